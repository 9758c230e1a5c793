#include <fmt/format.h>

#include <regex>

#include "commands.hpp"
#include "mtile/harness.hpp"

namespace mtile::cli {

Action add_test(CLI::App& app) {
  struct Opts {
    std::vector<std::string> backends;
    std::string filter;
    CpuChecks checks;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--backend", o->backends, "backends to test (default: every one available here)");
  app.add_option("--filter", o->filter, "only kernels whose name matches this regular expression");
  add_cpu_checks(app, o->checks);
  return [o] {
    std::regex re;
    try {
      re = std::regex(o->filter.empty() ? ".*" : o->filter);
    } catch (const std::regex_error& e) {
      throw Error(fmt::format("--filter '{}': not a regular expression ({})", o->filter, e.what()));
    }
    Context& ctx = Context::global();
    std::vector<Backend*> backends;
    std::unique_ptr<Backend> checked;
    if (o->checks.any()) {  // the CPU engine only, with the checks
      for (const std::string& name : o->backends) cpu_with_checks(o->checks, name);  // refuses others
      checked = cpu_with_checks(o->checks, o->backends.empty() ? "" : o->backends.front());
      backends.push_back(checked.get());
    } else if (o->backends.empty()) {
      for (const std::string& name : backend_names()) {
        try {
          backends.push_back(&ctx.backend(name));
        } catch (const Error& e) {
          fmt::print("skipping backend {}: {}\n", name, e.what());
        }
      }
    } else {
      for (const std::string& name : o->backends) backends.push_back(&ctx.backend(name));
    }
    int passed = 0, failed = 0, skipped = 0;
    for (Backend* b : backends) {
      fmt::print("== backend {} ({})\n", b->name(), b->device_name());
      for (const Kernel& k : kernels()) {
        if (!std::regex_search(k.name(), re)) continue;
        for (ScalarType t : k->def.dtypes()) {
          for (const Shape& s : k->test_shapes) {
            try {
              if (std::string why = ranks_unavailable(ctx, *b, k, s); !why.empty()) {
                fmt::print("{:<24} {:<5} {:<22} skipped: {}\n", k.name(), type_name(t), shape_text(s), why);
                ++skipped;
                continue;
              }
              CheckResult r = run_and_check(ctx, *b, k, t, s);
              fmt::print("{}\n", r.summary());
              (r.passed ? passed : failed)++;
            } catch (const Error& e) {
              fmt::print("{:<24} {:<5} {:<22} ERROR {}\n", k.name(), type_name(t), shape_text(s), e.what());
              ++failed;
            }
          }
        }
      }
    }
    if (passed + failed == 0) throw Error(fmt::format("no kernel matches --filter '{}'", o->filter));
    fmt::print("{} passed, {} failed{}\n", passed, failed,
               skipped ? fmt::format(", {} skipped (more ranks than devices)", skipped) : "");
    return failed ? 1 : 0;
  };
}

}  // namespace mtile::cli
