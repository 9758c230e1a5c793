// rms_norm_rope: the q/k norm of each head fused with rotate-half rotary embedding (Qwen3's
// attention input): for each head of x[tokens, heads, head_dim], with w[head_dim],
//   y = x * rsqrt(mean(x^2) + eps) * w   (f32, not rounded to T before the rotation)
//   out = rope(y)                        (rope.cpp: pairs (i, i + head_dim / 2), cache rotary.hpp)
// One simdgroup per head; each lane holds both elements of its pairs, so the rotation needs no
// exchange between lanes. A second pass (from L1) normalises, rotates and writes.
#include <cmath>

#include "kernels/rope/rope.hpp"
#include "kernels/rope/rotary.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void rms_norm_rope(In<T> x, In<T> w, In<i32> positions, In<f32> cos_sin, Out<T> out, Scalar<f32> eps, Constexpr heads,
                   Constexpr head_dim, Constexpr max_pos) {
  const uint32_t per_lane = config("per_lane");
  HeadRow h = head_row(heads, head_dim);
  if_(h.valid, [&] {  // the same in every lane of a simdgroup, so its simd_sum has all 32 lanes
    Val half = named("half", head_dim / 2u);
    Var ssq("ssq", lit(0.0f));
    for_row_chunks(simd_lane(), lit(kSimdLanes), half, per_lane, [&](Val c, uint32_t count) {
      for (uint32_t k = 0; k < count; ++k) {
        Val a = load<f32>(x[column(h.start + c, k)]), b = load<f32>(x[column(h.start + half + c, k)]);
        ssq = fma(b, b, fma(a, a, ssq));
      }
    });
    Val rms = named("rms", rsqrt(simd_sum(ssq.get()) / head_dim.cast<f32>() + eps));
    Val cs = cache_row_start(positions, h.token, max_pos, head_dim);
    for_row_chunks(simd_lane(), lit(kSimdLanes), half, per_lane, [&](Val c, uint32_t count) {
      Val lo = h.start + c, hi = h.start + half + c;
      std::vector<Val> outs_lo, outs_hi;
      for (uint32_t k = 0; k < count; ++k) {
        Val a = load<f32>(x[column(lo, k)]) * rms * load<f32>(w[column(c, k)]);
        Val b = load<f32>(x[column(hi, k)]) * rms * load<f32>(w[column(half + c, k)]);
        Val co = load(cos_sin[column(cs + c, k)]), si = load(cos_sin[column(cs + half + c, k)]);
        outs_lo.push_back(a * co - b * si);
        outs_hi.push_back(b * co + a * si);
      }
      for (uint32_t k = 0; k < count; ++k) store(out[column(lo, k)], outs_lo[k].cast<T>());
      for (uint32_t k = 0; k < count; ++k) store(out[column(hi, k)], outs_hi[k].cast<T>());
    });
  });
}

}  // namespace

KernelSpec rms_norm_rope_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("rms_norm_rope", ir::Mode::Reduction,
                                {"x", "w", "positions", "cos_sin", "out", "eps", "heads", "head_dim", "max_pos"},
                                MTILE_FLOAT_VARIANTS(rms_norm_rope));
  k.family = "rope";
  k.summary = "per-head RMSNorm (q/k norm) fused with rotate-half rotary embedding";
  rotary_contract(k);
  k.sizes["w"] = rule::var("head_dim");
  k.inits["eps"] = Init::constant(1e-6);
  using rule::var;
  k.bytes = k.bytes + var("head_dim") * var("dtype_bytes");
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = uint64_t{dim(s, "tokens")} * dim(s, "heads"), hd = dim(s, "head_dim");
    const auto &x = t["x"], &w = t["w"];
    const double eps = t["eps"][0];
    std::vector<double> y(x.size());
    for (uint64_t r = 0; r < rows; ++r) {
      double ssq = 0;
      for (uint64_t i = 0; i < hd; ++i) ssq += x[r * hd + i] * x[r * hd + i];
      double inv = 1.0 / std::sqrt(ssq / static_cast<double>(hd) + eps);
      for (uint64_t i = 0; i < hd; ++i) y[r * hd + i] = x[r * hd + i] * inv * w[i];
    }
    rotary_reference(s, t, y, false);
  };
  return k;
}

}  // namespace mtile::lib
