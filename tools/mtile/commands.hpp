// The mtile CLI's subcommands. Each registers its options on the app and returns its action.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
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

// --sanitize and --loop-budget: checks only the CPU engine makes (docs/reliability.md).
struct CpuChecks {
  bool sanitize = false;
  uint64_t loop_budget = 0;  // 0: not given
  bool any() const { return sanitize || loop_budget > 0; }
};
void add_cpu_checks(CLI::App& app, CpuChecks& checks);
// The CPU engine with the checks asked for, or nullptr when none was. Throws Error when they are
// asked for with a backend that is not the CPU engine's (`backend`: the --backend given, or "").
std::unique_ptr<Backend> cpu_with_checks(const CpuChecks& checks, const std::string& backend);
// --tpg N: sets the meta-parameter the dispatch rule's tpg is (`tpg = threads`) unless --config
// set it, else overrides the rule's geometry. The contract checks the result either way.
void set_tpg(const KernelSpec& k, const Shape& shape, const Target& target, ScalarType dtype, uint32_t tpg,
             LaunchOptions& launch);

}  // namespace mtile::cli
