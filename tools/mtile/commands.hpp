// The mtile CLI's subcommands. Each registers its options on the app and returns its action.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "mtile/registry.hpp"

namespace mtile::cli {

using Action = std::function<int()>;

Action add_list(CLI::App& app);
Action add_emit(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_run(CLI::App& app);
Action add_test(CLI::App& app);

// Shared parsing with errors that name the option and the choices.
ScalarType parse_dtype_option(const std::string& text, const KernelSpec& k);
std::map<std::string, uint32_t> parse_set_options(const std::vector<std::string>& items);

}  // namespace mtile::cli
