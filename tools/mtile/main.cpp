// mtile: list, emit, inspect, run and test the kernels of the standard library.
// Exit status: 0 success, 1 a failed check, 2 a bad request (unknown kernel, broken contract, ...).
#include <fmt/format.h>

#include "commands.hpp"

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const mtile::Error& e) {
    fmt::print(stderr, "mtile: error: {}\n", e.what());
    return 2;
  }
  return 2;
}
