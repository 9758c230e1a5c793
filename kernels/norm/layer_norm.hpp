// The body, spec and reference shared by layer_norm and layer_norm_no_bias:
//   mean = sum(x) / n;  var = sum((x - mean)^2) / n            (f32, two passes over the row)
//   out  = (x - mean) * rsqrt(var + eps) * w (+ b)
// Threads stride over the row in chunks of 8 (strided_rms_norm.hpp's layout); the second and third
// passes re-read the row from L2. Two passes for the variance, not sum(x^2) - mean^2, which
// cancels when |mean| is large against the spread. A row whose sum or sum of squared deviations
// overflows f32 (the inverse deviation then NaN or 0) is taken again with x scaled by a power of two
// (huge_rows.hpp): out = (x * s - mean_s) * rsqrt(var_s + eps * s^2), s = 1 on the common path.
#pragma once
#include <cmath>
#include <optional>
#include <vector>

#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/strided_rms_norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

template <class T>
void layer_norm_body(const dsl::Tensor& x, const dsl::Tensor& w, const dsl::Tensor* b, const dsl::Tensor& out,
                     const dsl::Val& eps, const dsl::Constexpr& n) {
  using namespace dsl;
  Val base = named("row_start", program_id(0) * n);
  // Sets `mean` and `inv_std` (1 / std) of the row's values, times `s` where given.
  std::optional<Var> mean, inv_std;
  auto set = [](std::optional<Var>& var, const char* name, const Val& v) {
    if (var)
      *var = v;
    else
      var.emplace(name, v);  // its initial value: one use, no copy line in the generated code
  };
  auto moments = [&](const Val* s) {
    auto value = [&](Val at) { return s ? load<f32>(x[at]) * *s : load<f32>(x[at]); };
    Var sum("sum", lit(0.0f));
    for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
      for (uint32_t k = 0; k < count; ++k) sum += value(column(base + c, k));
    });
    set(mean, "mean", reduce_sum(sum.get()) / n.cast<f32>());
    Var ssd("ssd", lit(0.0f));
    for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
      for (uint32_t k = 0; k < count; ++k) {
        Val d = value(column(base + c, k)) - mean->get();
        ssd = fma(d, d, ssd);
      }
    });
    Val var_eps = reduce_sum(ssd.get()) / n.cast<f32>() + (s ? eps * *s * *s : eps);
    set(inv_std, "inv_std", rsqrt(var_eps));
  };
  moments(nullptr);
  std::optional<Var> scale;  // only where rows can overflow: f16 code multiplies by nothing
  if constexpr (sum_of_squares_can_overflow<T>) {
    scale.emplace("row_scale", lit(1.0f));
    if_(isnan(inv_std->get()) || inv_std->get() == 0.0f, [&] {  // the row's sums overflowed
      Var largest(lit(0.0f));
      for_(tid(), n, lsize(), [&](Val i) { largest = max(largest.get(), abs(load<f32>(x[base + i]))); });
      *scale = inverse_power_of_two(reduce_max(largest.get()));
      Val s = scale->get();
      moments(&s);
    });
  }
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    std::vector<Val> outs;
    for (uint32_t k = 0; k < count; ++k) {
      Val xv = load<f32>(x[column(base + c, k)]);
      Val v = ((scale ? xv * scale->get() : xv) - mean->get()) * inv_std->get() * load<f32>(w[column(c, k)]);
      outs.push_back(b ? v + load<f32>((*b)[column(c, k)]) : v);
    }
    for (uint32_t k = 0; k < count; ++k) store(out[column(base + c, k)], outs[k].cast<T>());
  });
}

inline void layer_norm_reference(const Shape& s, HostTensors& t, bool with_bias) {
  uint64_t rows = dim(s, "rows"), n = dim(s, "n");
  const auto &x = t["x"], &w = t["w"];
  const std::vector<double>* b = with_bias ? &t["b"] : nullptr;
  auto& out = t["out"];
  const double eps = t["eps"][0];
  for (uint64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (uint64_t i = 0; i < n; ++i) mean += x[r * n + i];
    mean /= static_cast<double>(n);
    for (uint64_t i = 0; i < n; ++i) var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
    double inv = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
    for (uint64_t i = 0; i < n; ++i) out[r * n + i] = (x[r * n + i] - mean) * inv * w[i] + (b ? (*b)[i] : 0.0);
  }
}

inline KernelSpec layer_norm_spec_for(dsl::KernelDef def, std::string summary, bool with_bias) {
  KernelSpec k = strided_norm_spec(std::move(def), std::move(summary), NormForm::Plain);
  strided_row_contract(k);  // its own strided body, not rms_norm_row: no `chunks`
  k.sizes = norm_sizes({"x", "out"}, false);
  if (with_bias) k.sizes["b"] = rule::var("n");
  // Rows with a mean far from 0 (x in [2, 4]) check that the variance does not cancel.
  k.inits["x"] = Init::uniform(2.0, 4.0);
  k.inits["eps"] = Init::constant(1e-5);
  k.reference = [with_bias](const Shape& s, HostTensors& t) { layer_norm_reference(s, t, with_bias); };
  for (uint32_t n : {768u, 1000u, 2880u}) k.test_shapes.push_back({{"rows", 3}, {"n", n}});
  k.bench_shapes = {{{"rows", 1}, {"n", 4096}},
                    {{"rows", 256}, {"n", 4096}},
                    {{"rows", 4096}, {"n", 768}},
                    {{"rows", 4096}, {"n", 4096}},
                    {{"rows", 2048}, {"n", 8192}}};
  return k;
}

}  // namespace mtile::lib
