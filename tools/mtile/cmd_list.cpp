#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"

namespace mtile::cli {

Action add_list(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "machine-readable output");
  return [json] {
    nlohmann::json all = nlohmann::json::array();
    for (const KernelSpec& k : kernels()) {
      std::vector<std::string> dtypes;
      for (ScalarType t : k.def.dtypes) dtypes.push_back(type_name(t));
      std::vector<std::string> rules;
      for (const Precondition& p : k.preconditions) rules.push_back(p.rule);
      if (*json) {
        all.push_back({{"name", k.name()},
                       {"family", k.family},
                       {"mode", ir::mode_name(k.def.mode)},
                       {"dtypes", dtypes},
                       {"dims", k.dims},
                       {"dispatch", k.dispatch_rule},
                       {"preconditions", rules},
                       {"summary", k.summary}});
      } else {
        fmt::print("{:<24} {:<12} {:<16} {}\n", k.name(), k.family, fmt::format("{}", fmt::join(dtypes, ",")),
                   k.summary);
        fmt::print("{:<24} dims {}; {}; requires {}\n", "", fmt::join(k.dims, ","), k.dispatch_rule,
                   rules.empty() ? "nothing more" : fmt::format("{}", fmt::join(rules, ", ")));
      }
    }
    if (*json) fmt::print("{}\n", all.dump(2));
    return 0;
  };
}

}  // namespace mtile::cli
