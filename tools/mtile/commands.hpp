// The mtile CLI's subcommands. Each registers its options on the app and returns its action.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "mtile/registry.hpp"
#include "mtile/target.hpp"

namespace mtile::cli {

using Action = std::function<int()>;

Action add_list(CLI::App& app);
Action add_emit(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_run(CLI::App& app);
Action add_test(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_fuzz(CLI::App& app);

// Shared parsing with errors that name the option and the choices.
ScalarType parse_dtype_option(const std::string& text, const Kernel& k);
// NAME=VALUE items (--set, --config), each a u32.
// NAME=VALUE items; with `type_values`, a VALUE that names a type (bf16) is its type code, as a
// Config meta-parameter choosing a kernel's output type takes it.
std::map<std::string, uint32_t> parse_assignments(const std::vector<std::string>& items, const char* option,
                                                  bool type_values = false);
// The target code is printed for: `print` is ir, cuda or msl; `arch` (optional) names the part:
// sm_90a, sm_80 (cuda), apple7..apple9 (msl), cpu (ir only).
Target emit_target(const std::string& print, const std::string& arch);

}  // namespace mtile::cli
