// Registry lookups, shape text, and the contract check every launch goes through.
#include "mtile/registry.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mtile {

std::string shape_text(const Shape& s) {
  std::string out;
  for (const auto& [k, v] : s) out += fmt::format("{}{}={}", out.empty() ? "" : ",", k, v);
  return out;
}

Shape parse_shape(const std::string& text) {
  Shape s;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error(fmt::format("bad shape '{}': expected NAME=VALUE[,NAME=VALUE...], e.g. rows=64,n=4096", text));
    std::string name = item.substr(0, eq), value = item.substr(eq + 1);
    if (value.find_first_not_of("0123456789") != std::string::npos || value.size() > 10 ||
        std::stoull(value) > 0xffffffffull)
      throw Error(fmt::format("bad shape '{}': '{}' is not a u32 number", text, value));
    s[name] = static_cast<uint32_t>(std::stoull(value));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (s.empty()) throw Error("empty shape: expected NAME=VALUE[,NAME=VALUE...]");
  return s;
}

bool KernelSpec::has_dtype(ScalarType t) const {
  return std::find(def.dtypes.begin(), def.dtypes.end(), t) != def.dtypes.end();
}

void validate_shape(const KernelSpec& k, const Shape& s) {
  for (const std::string& d : k.dims) {
    auto it = s.find(d);
    if (it == s.end())
      throw Error(fmt::format("kernel {}: shape {} lacks '{}' (it takes {})", k.name(), shape_text(s), d,
                              fmt::join(k.dims, ", ")));
  }
  for (const auto& [name, value] : s) {
    (void)value;
    if (std::find(k.dims.begin(), k.dims.end(), name) == k.dims.end())
      throw Error(fmt::format("kernel {}: shape has '{}', which it does not take (it takes {})", k.name(), name,
                              fmt::join(k.dims, ", ")));
  }
}

std::map<std::string, uint64_t> contract_bindings(const KernelSpec& k, const Shape& s, const Geometry& g) {
  validate_shape(k, s);
  std::map<std::string, uint64_t> v(s.begin(), s.end());
  v["tpg"] = g.tpg;
  v["grid"] = g.grid[0];
  v["grid_y"] = g.grid[1];
  v["grid_z"] = g.grid[2];
  return v;
}

void check_contract(const KernelSpec& k, const Shape& s, const Geometry& g) {
  auto v = contract_bindings(k, s, g);
  std::vector<std::string> broken;
  auto show = [&](const std::vector<std::string>& uses) {
    std::vector<std::string> parts;
    for (const std::string& u : uses) parts.push_back(fmt::format("{} = {}", u, v.at(u)));
    return fmt::format("{}", fmt::join(parts, ", "));
  };
  // Rules every kernel has: a real geometry the hardware can run.
  if (g.tpg < 1 || g.tpg > 1024) broken.push_back(fmt::format("1 <= tpg <= 1024 (tpg = {})", g.tpg));
  if (g.grid[0] < 1 || g.grid[1] < 1 || g.grid[2] < 1)
    broken.push_back(fmt::format("grid >= 1 on every axis (grid = {}x{}x{})", g.grid[0], g.grid[1], g.grid[2]));
  for (const Precondition& p : k.preconditions)
    if (!p.holds(v)) broken.push_back(fmt::format("{} ({})", p.rule, show(p.uses)));
  if (broken.empty()) return;
  throw Error(fmt::format("kernel {}: contract violated: {}. Dispatch rule: {}; shape {}. Nothing was launched.",
                          k.name(), fmt::join(broken, "; "), k.dispatch_rule, shape_text(s)));
}

}  // namespace mtile
