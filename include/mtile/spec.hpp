// Helpers for writing kernel specs (mtile/registry.hpp), inside the repo or out of it.
#pragma once
#include <map>
#include <string>

#include "mtile/registry.hpp"
#include "mtile/rule.hpp"

namespace mtile::spec {

// A dim's value in a shape, for references: dim(s, "rows"). Throws Error naming it when absent.
inline uint32_t dim(const Shape& s, const std::string& name) {
  auto it = s.find(name);
  if (it == s.end()) throw Error("shape " + shape_text(s) + " has no '" + name + "'");
  return it->second;
}

// Tolerances for kernels whose outputs are O(1) and computed in f32 from dtype-rounded inputs:
// the output's rounding dominates (2^-24, 2^-11, 2^-8 relative).
inline std::map<ScalarType, Tolerance> float_tolerances() {
  return {{ScalarType::f32, {1e-5, 1e-4}}, {ScalarType::f16, {5e-4, 4e-3}}, {ScalarType::bf16, {4e-3, 3e-2}}};
}

// One threadgroup per row, exactly: grid == rows on x and 1 on y and z. A kernel that indexes
// rows by program_id(0) needs all three (a larger grid reads past the tensors, a second axis
// writes every row twice).
inline std::vector<rule::Expr> one_threadgroup_per_row(const rule::Expr& rows = rule::var("rows")) {
  using rule::var;
  return {var("grid") == rows, var("grid_y") == 1, var("grid_z") == 1};
}

}  // namespace mtile::spec
