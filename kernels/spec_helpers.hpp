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

// Elementwise kernels over n elements (row_loops.hpp's visit_chunk): each thread takes per_thread
// consecutive elements (8: a 16-byte access of bf16), threadgroups of 256 threads, exactly enough
// threadgroups to cover n, and indices that stay below 2^32.
inline void chunked_elementwise_contract(KernelSpec& k) {
  using rule::var;
  rule::Expr n = var("n"), per_thread = var("per_thread");
  k.dims = {"n"};
  k.config = {{"threads", 256}, {"per_thread", 8}};
  k.dispatch = {.grid = rule::ceil_div(n, var("threads") * per_thread), .tpg = var("threads")};
  k.preconditions = {n >= 1,
                     per_thread >= 1,
                     var("grid") == rule::ceil_div(n, var("tpg") * per_thread),
                     var("grid_y") == 1,
                     var("grid_z") == 1,
                     var("grid") * var("tpg") * per_thread < (uint64_t{1} << 32)};
  k.tolerance = float_tolerances();
  k.example_shape = {{"n", 1u << 20}};
  k.test_shapes = {{{"n", 1}}, {{"n", 7}}, {{"n", 1000}}, {{"n", 70001}}};
  k.bench_shapes = {{{"n", 1u << 16}}, {{"n", 1u << 24}}, {{"n", 1u << 26}}};
}

// RMS-norm reference: out[r, i] = (residual[r, i] +) (w_offset + w[i]) * x[r, i] / sqrt(mean(x[r]^2) + eps),
// eps read from the tensor or scalar `eps_name`.
inline void rms_norm_reference(const Shape& s, HostTensors& t, bool with_residual, const char* eps_name = "eps_buf",
                               double w_offset = 0) {
  uint64_t rows = dim(s, "rows"), n = dim(s, "n");
  const auto &x = t["x"], &w = t["w"];
  auto& out = t["out"];
  const double eps = t[eps_name][0];
  const std::vector<double>* residual = with_residual ? &t["residual"] : nullptr;
  for (uint64_t r = 0; r < rows; ++r) {
    double ssq = 0;
    for (uint64_t i = 0; i < n; ++i) ssq += x[r * n + i] * x[r * n + i];
    double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps);
    for (uint64_t i = 0; i < n; ++i) {
      double v = (w_offset + w[i]) * x[r * n + i] * inv;
      out[r * n + i] = residual ? (*residual)[r * n + i] + v : v;
    }
  }
}

// Pre-norm residual step in place: residual = x + residual (rounded to the dtype as stored);
// x = s * (w_offset + w) / sqrt(mean(s^2) + eps), where s is the stored sum, or with
// `round_sum` false the sum before rounding.
inline void add_rms_norm_reference(const Shape& s, HostTensors& t, const char* eps_name, double w_offset,
                                   bool round_sum) {
  uint64_t rows = dim(s, "rows"), n = dim(s, "n");
  auto &x = t["x"], &residual = t["residual"];
  const auto& w = t["w"];
  const double eps = t[eps_name][0];
  std::vector<double> sum(n);
  for (uint64_t r = 0; r < rows; ++r) {
    double ssq = 0;
    for (uint64_t i = 0; i < n; ++i) {
      double exact = x[r * n + i] + residual[r * n + i];
      residual[r * n + i] = t.round(exact);
      sum[i] = round_sum ? residual[r * n + i] : exact;
      ssq += sum[i] * sum[i];
    }
    double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps);
    for (uint64_t i = 0; i < n; ++i) x[r * n + i] = sum[i] * inv * (w_offset + w[i]);
  }
}

// out[i, j] = sum_p a[i, p] * w[j, p] in float64 for i < m, j < n (a m x k, w n x k, row-major:
// x @ W.T of a torch Linear), the reference of gemv, gemm and example_mma; blocks of 64 outputs
// over the host's threads.
inline void linear_reference(const std::vector<double>& a, const std::vector<double>& w, std::vector<double>& out,
                             uint64_t m, uint64_t n, uint64_t k) {
  constexpr uint64_t kBlock = 64;
  const uint64_t outputs = m * n;
  spec::parallel_for((outputs + kBlock - 1) / kBlock, outputs * k, [&](uint64_t block) {
    for (uint64_t e = block * kBlock; e < std::min(outputs, (block + 1) * kBlock); ++e) {
      uint64_t i = e / n, j = e % n;
      double sum = 0;
      for (uint64_t p = 0; p < k; ++p) sum += a[i * k + p] * w[j * k + p];
      out[e] = sum;
    }
  });
}

// Hidden-state rows of LLMs: decode batches (1, 32, 256 rows) to prefill (2048, 16384 rows) at
// n = 4096, and the hidden sizes 5120, 7168, 8192 and 16384.
inline std::vector<Shape> hidden_state_bench_shapes() {
  return {{{"rows", 1}, {"n", 4096}},    {{"rows", 32}, {"n", 4096}},    {{"rows", 256}, {"n", 4096}},
          {{"rows", 2048}, {"n", 4096}}, {{"rows", 16384}, {"n", 4096}}, {{"rows", 4096}, {"n", 5120}},
          {{"rows", 4096}, {"n", 7168}}, {{"rows", 4096}, {"n", 8192}},  {{"rows", 2048}, {"n", 16384}}};
}

// Sizes of the norm kernels' tensors: rows x n, w n, and eps_buf 1 where eps is a tensor (the
// newer kernels take it as a Scalar<f32>).
inline std::map<std::string, rule::Expr> norm_sizes(std::initializer_list<const char*> row_tensors,
                                                    bool eps_buf = true) {
  using rule::var;
  std::map<std::string, rule::Expr> m = {{"w", var("n")}};
  if (eps_buf) m["eps_buf"] = 1;
  for (const char* t : row_tensors) m[t] = var("rows") * var("n");
  return m;
}

}  // namespace mtile::lib
