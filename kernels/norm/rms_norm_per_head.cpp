// rms_norm_per_head: RMSNorm of each attention head (the q/k norm of Qwen3, Gemma 3, OLMo 2):
//   x, out = [tokens, heads, head_dim], w = [head_dim]
//   out[t, h, :] = x[t, h, :] * rsqrt(mean(x[t, h, :]^2) + eps) * w
// One simdgroup per head (head_rows.hpp): lanes take per_lane consecutive elements at a time, the
// sum of squares is a simd_sum, and a second pass (from L1) writes the output.
#include <cmath>

#include "kernels/head_rows.hpp"
#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void rms_norm_per_head(In<T> x, In<T> w, Out<T> out, Scalar<f32> eps, Constexpr heads, Constexpr head_dim) {
  const uint32_t per_lane = config("per_lane");
  HeadRow h = head_row(heads, head_dim);
  if_(h.valid, [&] {  // the same in every lane of a simdgroup, so its simd_sum has all 32 lanes
    Var ssq("ssq", lit(0.0f));
    for_row_chunks(simd_lane(), lit(kSimdLanes), head_dim, per_lane, [&](Val c, uint32_t count) {
      for (uint32_t k = 0; k < count; ++k) {
        Val v = load<f32>(x[column(h.start + c, k)]);
        ssq = fma(v, v, ssq);
      }
    });
    Val rms = rsqrt(simd_sum(ssq.get()) / head_dim.cast<f32>() + eps);
    if constexpr (sum_of_squares_can_overflow<T>) {  // rms is the same in every lane of the simdgroup
      auto each_element = [&](const auto& fn) {
        for_(simd_lane(), head_dim, lit(kSimdLanes), [&](Val i) { fn(load<f32>(x[h.start + i])); });
      };
      rms = rescue_huge_row(rms, each_element, eps, head_dim, RowScope::Simdgroup);
    }
    rms = named("rms", rms);
    for_row_chunks(simd_lane(), lit(kSimdLanes), head_dim, per_lane, [&](Val c, uint32_t count) {
      std::vector<Val> outs;
      for (uint32_t k = 0; k < count; ++k)
        outs.push_back(load<f32>(x[column(h.start + c, k)]) * rms * load<f32>(w[column(c, k)]));
      for (uint32_t k = 0; k < count; ++k) store(out[column(h.start + c, k)], outs[k].cast<T>());
    });
  });
}

}  // namespace

KernelSpec rms_norm_per_head_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("rms_norm_per_head", ir::Mode::Reduction, {"x", "w", "out", "eps", "heads", "head_dim"},
                                MTILE_FLOAT_VARIANTS(rms_norm_per_head));
  k.family = "norm";
  k.summary = "RMSNorm of each head of x[tokens, heads, head_dim] (q/k norm), w[head_dim]";
  head_contract(k, rule::var("head_dim"));
  using rule::var;
  rule::Expr elements = var("tokens") * var("heads") * var("head_dim");
  k.sizes = {{"x", elements}, {"out", elements}, {"w", var("head_dim")}};
  k.inits = {{"eps", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    Shape rows{{"rows", dim(s, "tokens") * dim(s, "heads")}, {"n", dim(s, "head_dim")}};
    rms_norm_reference(rows, t, false, "eps");
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"tokens", 64}, {"heads", 32}, {"head_dim", 128}};
  // Odd token counts, head counts that leave the last group part-empty, head_dim 32..256.
  k.test_shapes = {{{"tokens", 3}, {"heads", 5}, {"head_dim", 128}}, {{"tokens", 1}, {"heads", 8}, {"head_dim", 64}},
                   {{"tokens", 2}, {"heads", 3}, {"head_dim", 80}},  {{"tokens", 3}, {"heads", 2}, {"head_dim", 256}},
                   {{"tokens", 5}, {"heads", 1}, {"head_dim", 32}},  {{"tokens", 2}, {"heads", 6}, {"head_dim", 100}}};
  k.bench_shapes = {{{"tokens", 1}, {"heads", 32}, {"head_dim", 128}},
                    {{"tokens", 256}, {"heads", 32}, {"head_dim", 128}},
                    {{"tokens", 4096}, {"heads", 32}, {"head_dim", 128}},
                    {{"tokens", 4096}, {"heads", 8}, {"head_dim", 128}},
                    {{"tokens", 4096}, {"heads", 16}, {"head_dim", 256}}};
  return k;
}

}  // namespace mtile::lib
