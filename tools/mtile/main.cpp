// mtile: list, emit, inspect, run, test, bench and fuzz kernels.
// Exit status: 0 success, 1 a failed check, 2 a bad request (unknown kernel, malformed shape,
// trace error, broken contract), 3 an internal error (an mtile bug), 4 a device error (driver,
// out of memory). With --json an error is printed as JSON on stdout too.
#include <fmt/format.h>

#include <new>
#include <nlohmann/json.hpp>

#include "commands.hpp"

namespace {

int exit_code(mtile::ErrorKind k) {
  switch (k) {
    case mtile::ErrorKind::User: return 2;
    case mtile::ErrorKind::Internal: return 3;
    case mtile::ErrorKind::Device: return 4;
  }
  return 3;
}

int report(bool json, mtile::ErrorKind kind, const std::string& what) {
  if (json)
    fmt::print("{}\n", nlohmann::json{{"error", {{"kind", mtile::error_kind_name(kind)}, {"message", what}}}}.dump(2));
  fmt::print(stderr, "mtile: {} error: {}\n", mtile::error_kind_name(kind), what);
  return exit_code(kind);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mtile: C++ GPU kernels, traced to IR, run on the CPU engine or emitted for CUDA and Metal"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mtile ") + MTILE_VERSION);
  std::vector<std::pair<CLI::App*, mtile::cli::Action>> actions;
  auto add = [&](const char* name, const char* help, mtile::cli::Action (*reg)(CLI::App&)) {
    CLI::App* sub = app.add_subcommand(name, help);
    actions.emplace_back(sub, reg(*sub));
  };
  add("list", "list the registered kernels", mtile::cli::add_list);
  add("emit", "print a kernel's IR or generated source", mtile::cli::add_emit);
  add("inspect", "print the IR after each pass of the pipeline", mtile::cli::add_inspect);
  add("run", "run one kernel on random inputs and check it against the float64 reference", mtile::cli::add_run);
  add("test", "run every kernel x dtype on its test shapes", mtile::cli::add_test);
  add("bench", "check and time kernels on their bench shapes: median time, GB/s and % of the copy bandwidth",
      mtile::cli::add_bench);
  add("fuzz", "run random kernels two ways and compare: the pass pipeline, or a GPU against the CPU engine",
      mtile::cli::add_fuzz);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  bool json = false;
  for (auto& [sub, action] : actions)
    if (sub->parsed())
      if (auto* opt = sub->get_option_no_throw("--json")) json = opt->count() > 0;
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const mtile::Error& e) {
    return report(json, e.kind(), e.what());
  } catch (const std::bad_alloc&) {
    return report(json, mtile::ErrorKind::Device, "out of host memory");
  } catch (const std::exception& e) {
    return report(json, mtile::ErrorKind::Internal, std::string("unexpected: ") + e.what());
  } catch (...) {
    return report(json, mtile::ErrorKind::Internal, "unexpected exception of unknown type");
  }
  return 2;
}
