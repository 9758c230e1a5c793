// Small helpers shared by kernel specs: shape access, tolerances, row-wise references.
#pragma once
#include <fmt/format.h>

#include <cmath>

#include "mtile/registry.hpp"

namespace mtile::lib {

inline uint32_t dim(const Shape& s, const char* name) {
  auto it = s.find(name);
  if (it == s.end()) throw Error(fmt::format("shape {} has no '{}'", shape_text(s), name));
  return it->second;
}

// Tolerances for kernels whose outputs are O(1) and computed in f32 from dtype-rounded inputs:
// the output rounding dominates (2^-24, 2^-11, 2^-8 relative).
inline std::map<ScalarType, Tolerance> float_tolerances() {
  return {{ScalarType::f32, {1e-5, 1e-4}}, {ScalarType::f16, {5e-4, 4e-3}}, {ScalarType::bf16, {4e-3, 3e-2}}};
}

inline uint64_t round_up(uint64_t v, uint64_t m) {
  return (v + m - 1) / m * m;
}

// Threads for kernels whose threads stride over a row: about 16 elements (two chunks of 8) a
// thread, a multiple of 32 from 128 to 1024. Measured on an H100 (bench/NOTES.md): 256 threads
// for n = 4096 and 512 for n = 8192 beat 512 and 1024 by 4-50%.
inline uint32_t strided_row_threads(uint32_t n) {
  return static_cast<uint32_t>(std::min<uint64_t>(1024, std::max<uint64_t>(128, round_up((n + 15) / 16, 32))));
}

// Row kernels whose threads stride over a row of any length: one threadgroup per row.
inline void strided_row_contract(KernelSpec& k) {
  k.dims = {"rows", "n"};
  k.dispatch_rule = "grid = rows, tpg = min(1024, max(128, round_up(ceil(n / 16), 32)))";
  k.dispatch = [](const Shape& s) {
    Geometry g;
    g.grid[0] = dim(s, "rows");
    g.tpg = strided_row_threads(dim(s, "n"));
    return g;
  };
  k.preconditions = {{"n >= 1", {"n"}, [](const auto& v) { return v.at("n") >= 1; }}};
  k.constexprs = [](const Shape& s) { return std::map<std::string, uint32_t>{{"n", dim(s, "n")}}; };
}

// Tensor sizes of the norm kernels: w has n elements, eps_buf one, the rest rows * n.
inline uint64_t norm_elements(const std::string& param, const Shape& s) {
  if (param == "w") return dim(s, "n");
  if (param == "eps_buf") return 1;
  return uint64_t(dim(s, "rows")) * dim(s, "n");
}

// RMS-norm reference: out[r, i] = (residual[r, i] +) w[i] * x[r, i] / sqrt(mean(x[r]^2) + eps).
inline void rms_norm_reference(const Shape& s, HostTensors& t, int x, int residual, int w, int out, int eps) {
  uint32_t rows = dim(s, "rows"), n = dim(s, "n");
  for (uint32_t r = 0; r < rows; ++r) {
    double ssq = 0;
    for (uint32_t i = 0; i < n; ++i) ssq += t[x][r * n + i] * t[x][r * n + i];
    double inv = 1.0 / std::sqrt(ssq / n + t[eps][0]);
    for (uint32_t i = 0; i < n; ++i) {
      double v = t[w][i] * t[x][r * n + i] * inv;
      t[out][r * n + i] = residual >= 0 ? t[residual][r * n + i] + v : v;
    }
  }
}

}  // namespace mtile::lib
