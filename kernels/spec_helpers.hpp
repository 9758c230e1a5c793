// Pieces shared by the library's specs: the strided row contract and the RMS-norm reference.
#pragma once
#include <cmath>

#include "mtile/spec.hpp"

namespace mtile::lib {

using spec::dim;
using spec::float_tolerances;

// Row kernels whose threads stride over a row of any length: one threadgroup per row, about 16
// elements (two 16-byte chunks of bf16) a thread, a whole number of simdgroups from 4 to the
// target's maximum. Measured on an H100 (bench/NOTES.md): 256 threads for n = 4096 and 512 for
// n = 8192 beat 512 and 1024 by 4-50%.
inline void strided_row_contract(KernelSpec& k) {
  using rule::var;
  rule::Expr n = var("n"), rows = var("rows"), simd = var("simd_width");
  k.dims = {"rows", "n"};
  k.config = {{"threads", rule::clamp(rule::round_up(rule::ceil_div(n, 16), simd), 4 * simd, var("max_tpg"))}};
  k.dispatch = {.grid = rows, .tpg = var("threads")};
  k.preconditions = spec::one_threadgroup_per_row();
  k.preconditions.push_back(var("tpg") == var("threads"));
  k.preconditions.push_back(n >= 1);
}

// RMS-norm reference: out[r, i] = (residual[r, i] +) w[i] * x[r, i] / sqrt(mean(x[r]^2) + eps).
inline void rms_norm_reference(const Shape& s, HostTensors& t, bool with_residual) {
  uint64_t rows = dim(s, "rows"), n = dim(s, "n");
  const auto &x = t["x"], &w = t["w"];
  auto& out = t["out"];
  const double eps = t["eps_buf"][0];
  const std::vector<double>* residual = with_residual ? &t["residual"] : nullptr;
  for (uint64_t r = 0; r < rows; ++r) {
    double ssq = 0;
    for (uint64_t i = 0; i < n; ++i) ssq += x[r * n + i] * x[r * n + i];
    double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps);
    for (uint64_t i = 0; i < n; ++i) {
      double v = w[i] * x[r * n + i] * inv;
      out[r * n + i] = residual ? (*residual)[r * n + i] + v : v;
    }
  }
}

// Sizes of the norm kernels' tensors: rows x n, w n, eps_buf 1 (those a kernel has).
inline std::map<std::string, rule::Expr> norm_sizes(std::initializer_list<const char*> row_tensors) {
  using rule::var;
  std::map<std::string, rule::Expr> m = {{"w", var("n")}, {"eps_buf", 1}};
  for (const char* t : row_tensors) m[t] = var("rows") * var("n");
  return m;
}

}  // namespace mtile::lib
