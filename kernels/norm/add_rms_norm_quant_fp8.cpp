// add_rms_norm_quant_fp8: the pre-norm residual step fused with a dynamic per-token fp8 (e4m3)
// quantisation of its output, for an fp8 GEMM that follows. For each row (token):
//   residual <- x + residual                     (rounded to T as stored; the stored sum is normalised,
//                                                 as in add_rms_norm)
//   y        = residual * rsqrt(mean(residual^2) + eps) * w                     (f32, not rounded)
//   scale    = max(max|y| / 448, 1 / (448 * 512))                              (f32, stored per row)
//   out      = y / scale, rounded to nearest even in e4m3 and saturated to +-448
// The floor on the scale keeps a row of zeros finite (out = 0). Three passes over the row: the
// sum (written to residual), the largest |y|, then the quantised output (both re-read from L2).
#include <algorithm>
#include <cmath>

#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/strided_rms_norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr float kE4m3Max = 448.0f;
constexpr float kMinScale = 1.0f / (kE4m3Max * 512.0f);

template <class T>
void add_rms_norm_quant_fp8(In<T> x, InOut<T> residual, In<T> w, Out<f8e4m3> out, Out<f32> scale, Scalar<f32> eps,
                            Constexpr n) {
  Val base = named("row_start", program_id(0) * n);
  Var ssq("ssq", lit(0.0f));
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    Val row = base + c;
    std::vector<Val> sums;
    for (uint32_t k = 0; k < count; ++k) {
      Val at = column(row, k);
      sums.push_back(cast<T>(load<f32>(x[at]) + load<f32>(residual[at])));
      Val v = sums.back().cast<f32>();
      ssq = fma(v, v, ssq);
    }
    for (uint32_t k = 0; k < count; ++k) store(residual[column(row, k)], sums[k]);
  });
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps, n});
  if constexpr (sum_of_squares_can_overflow<T>) {
    auto each_element = [&](const auto& fn) {
      for_(tid(), n, lsize(), [&](Val i) { fn(load<f32>(residual[base + i])); });
    };
    rms = rescue_huge_row(rms, each_element, eps, n);
  }
  rms = named("rms", rms);
  // y at column c + k of the row (residual as stored, from L2).
  auto y = [&](Val c, uint32_t k) {
    return load<f32>(residual[column(base + c, k)]) * rms * load<f32>(w[column(c, k)]);
  };
  Var amax("amax", lit(0.0f));
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    for (uint32_t k = 0; k < count; ++k) amax = max(amax, abs(y(c, k)));
  });
  Val row_scale = named("scale", max(reduce_max(amax.get()) / kE4m3Max, lit(kMinScale)));
  if_(tid() == 0u, [&] { store(scale[program_id(0)], row_scale); });
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    std::vector<Val> q;
    for (uint32_t k = 0; k < count; ++k) q.push_back(y(c, k) / row_scale);
    for (uint32_t k = 0; k < count; ++k) store(out[column(base + c, k)], q[k]);  // narrows: rounds, saturates
  });
}

}  // namespace

KernelSpec add_rms_norm_quant_fp8_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("add_rms_norm_quant_fp8", ir::Mode::Reduction,
                            {"x", "residual", "w", "out", "scale", "eps", "n"},
                            MTILE_FLOAT_VARIANTS(add_rms_norm_quant_fp8)),
      "add_rms_norm with a per-token fp8 e4m3 output: out = y / scale, scale = max|y| / 448", NormForm::PreAdd);
  strided_row_contract(k);  // its own three-pass body, not rms_norm_row: no `chunks`
  k.sizes = norm_sizes({"x", "residual", "out"}, false);
  k.sizes["scale"] = rule::var("rows");
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto &x = t["x"], &w = t["w"];
    auto &residual = t["residual"], &out = t["out"], &scale = t["scale"];
    const double eps = t["eps"][0];
    std::vector<double> y(n);
    for (uint64_t r = 0; r < rows; ++r) {
      double ssq = 0, amax = 0;
      for (uint64_t i = 0; i < n; ++i) {
        double& sum = residual[r * n + i];
        sum = t.round(x[r * n + i] + sum);
        ssq += sum * sum;
      }
      double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps);
      for (uint64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(y[i] = residual[r * n + i] * inv * w[i]));
      scale[r] = static_cast<float>(std::max(amax / kE4m3Max, static_cast<double>(kMinScale)));  // stored in f32
      for (uint64_t i = 0; i < n; ++i)
        out[r * n + i] = round_to(ScalarType::f8e4m3, static_cast<float>(y[i] / scale[r]));
    }
  };
  // out is compared in the e4m3 grid: a quotient within f32 rounding of a rounding boundary of the
  // grid may go either way, one step (at most 1/8 relative; 32 at the top binade, 256..448), on
  // rare elements, so the relative L2 error stays far below a step.
  k.output_tolerance["out"] = {.rel_l2 = 1e-2, .max_abs = 32, .max_steps = 1};
  k.test_shapes.push_back({{"rows", 3}, {"n", 7168}});
  k.bench_shapes = hidden_state_bench_shapes();
  return k;
}

}  // namespace mtile::lib
