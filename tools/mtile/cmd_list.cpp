#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"

namespace mtile::cli {

Action add_list(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "machine-readable output");
  return [json] {
    nlohmann::json all = nlohmann::json::array();
    for (const Kernel& k : kernels()) {
      std::vector<std::string> dtypes, rules, config;
      for (ScalarType t : k->def.dtypes()) dtypes.push_back(type_name(t));
      for (const rule::Expr& p : k->preconditions) rules.push_back(p.text());
      for (const ConfigParam& c : k->config) config.push_back(c.name + " = " + c.choice.text());
      if (*json) {
        all.push_back({{"name", k.name()},
                       {"family", k->family},
                       {"mode", ir::mode_name(k->def.mode())},
                       {"dtypes", dtypes},
                       {"dims", k->dims},
                       {"config", config},
                       {"dispatch", k->dispatch.text()},
                       {"preconditions", rules},
                       {"summary", k->summary},
                       {"example_shape", k->example_shape},
                       {"test_shapes", k->test_shapes},
                       {"bench_shapes", k->bench_shapes}});
      } else {
        fmt::print("{:<24} {:<12} {:<16} {}\n", k.name(), k->family, fmt::format("{}", fmt::join(dtypes, ",")),
                   k->summary);
        fmt::print("{:<24} dims {}; {}{}; requires {}\n", "", fmt::join(k->dims, ","),
                   config.empty() ? "" : fmt::format("config {}; ", fmt::join(config, ", ")), k->dispatch.text(),
                   rules.empty() ? "nothing more" : fmt::format("{}", fmt::join(rules, ", ")));
      }
    }
    if (*json) fmt::print("{}\n", all.dump(2));
    return 0;
  };
}

}  // namespace mtile::cli
