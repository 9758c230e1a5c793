#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"

namespace mtile::cli {

ScalarType parse_dtype_option(const std::string& text, const Kernel& k) {
  std::vector<std::string> have;
  for (ScalarType t : k->def.dtypes()) have.push_back(type_name(t));
  if (text.empty()) return k->def.dtypes().at(0);
  auto t = parse_type(text);
  if (!t || !k->has_dtype(*t))
    throw Error(
        fmt::format("kernel {}: --dtype {} is not one of its dtypes ({})", k.name(), text, fmt::join(have, ", ")));
  return *t;
}

std::map<std::string, uint32_t> parse_assignments(const std::vector<std::string>& items, const char* option,
                                                  bool type_values) {
  std::map<std::string, uint32_t> out;
  for (const std::string& item : items) {
    Shape one;
    try {
      size_t eq = item.find('=');
      auto type = type_values && eq != std::string::npos ? parse_type(item.substr(eq + 1)) : std::nullopt;
      if (type)  // a type name is its code: --config out_dtype=bf16
        one = {{item.substr(0, eq), dsl::type_code(*type)}};
      else
        one = parse_shape(item);  // same NAME=VALUE syntax and checks
    } catch (const Error& e) {
      throw Error(fmt::format("{} {}: {}", option, item, e.what()));
    }
    out.insert(one.begin(), one.end());
  }
  return out;
}

Target emit_target(const std::string& print, const std::string& arch) {
  if (print == "cuda") return Target::cuda(arch.empty() ? "sm_90a" : arch);
  if (print == "msl") return Target::metal(arch.empty() ? "apple9" : arch);
  if (arch.empty() || arch == "cpu") return Target::cpu();
  if (arch.rfind("sm_", 0) == 0) return Target::cuda(arch);
  if (arch.rfind("apple", 0) == 0) return Target::metal(arch);
  throw Error(fmt::format("--arch {}: not a known target (known: {})", arch, fmt::join(Target::known_names(), ", ")));
}

void add_cpu_checks(CLI::App& app, CpuChecks& checks) {
  app.add_flag("--sanitize", checks.sanitize,
               "run on the CPU engine with its sanitizer: races on threadgroup memory, reads of memory no thread "
               "wrote (backend cpu:sanitize)");
  app.add_option("--loop-budget", checks.loop_budget,
                 "CPU engine: loop iterations a threadgroup may run before the launch stops as a runaway loop "
                 "(default 2^26)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
}

std::unique_ptr<Backend> cpu_with_checks(const CpuChecks& checks, const std::string& backend) {
  if (!checks.any()) return nullptr;
  if (!backend.empty() && backend != "cpu" && backend != "cpu:sanitize")
    throw Error(
        fmt::format("{} checks what the CPU engine runs; --backend {} is not the CPU engine (use --backend cpu, "
                    "or leave --backend out)",
                    checks.sanitize ? "--sanitize" : "--loop-budget", backend));
  CpuOptions o;
  o.sanitize = checks.sanitize || backend == "cpu:sanitize";
  if (checks.loop_budget) o.loop_budget = checks.loop_budget;
  return make_cpu_backend(o);
}

void set_tpg(const KernelSpec& k, const Shape& shape, const Target& target, ScalarType dtype, uint32_t tpg,
             LaunchOptions& launch) {
  for (const ConfigParam& c : k.config)
    if (k.dispatch.tpg.text() == c.name) {
      auto [it, added] = launch.config.try_emplace(c.name, tpg);
      if (!added && it->second != tpg)
        throw Error(fmt::format("kernel {}: --tpg {} and --config {}={} disagree (its dispatch rule has tpg = {})",
                                k.name(), tpg, c.name, it->second, c.name));
      return;
    }
  Geometry g = resolve(k, shape, target, launch.config, {}, dtype).geometry;
  g.tpg = tpg;
  launch.geometry = g;
}

}  // namespace mtile::cli
