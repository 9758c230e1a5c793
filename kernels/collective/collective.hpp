// The collective family: kernels of tensor parallelism, launched on every rank at once over
// symmetric memory (KernelSpec::symmetric, docs/collectives.md).
#pragma once
#include <cmath>

#include "kernels/norm/strided_rms_norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

KernelSpec allreduce_add_rms_norm_spec();

// Rank r's residual and out after the all-reduce: s = sum over ranks of x (each rank's slice of
// rows * n), rounded to the dtype; residual_r = s + residual_r, rounded; out_r = the RMS norm of
// residual_r times w_r. Each rank's own tensors are rank-major in `t` (HostTensors of a
// collective check).
inline void allreduce_add_rms_norm_reference(const Shape& s, HostTensors& t) {
  uint64_t ranks = dim(s, "ranks"), rows = dim(s, "rows"), n = dim(s, "n"), m = rows * n;
  const auto &x = t["x"], &w = t["w"], &eps = t["eps_buf"];
  auto &residual = t["residual"], &out = t["out"];
  for (uint64_t r = 0; r < ranks; ++r)
    for (uint64_t row = 0; row < rows; ++row) {
      double ssq = 0;
      for (uint64_t i = 0; i < n; ++i) {
        double all = 0;
        for (uint64_t p = 0; p < ranks; ++p) all += x[p * m + row * n + i];
        double& res = residual[r * m + row * n + i];
        res = t.round(t.round(all) + res);
        ssq += res * res;
      }
      double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps[r]);
      for (uint64_t i = 0; i < n; ++i) out[r * m + row * n + i] = residual[r * m + row * n + i] * inv * w[r * n + i];
    }
}

}  // namespace mtile::lib
