// rope: rotary position embedding, rotate-half style (Llama, NeoX): for each head of
// x[tokens, heads, head_dim] and i < head_dim / 2, with c, s = the cache row of the token's
// position (rotary.hpp):
//   out[i] = x[i] c_i - x[i + head_dim / 2] s_i;   out[i + head_dim / 2] = x[i + head_dim / 2] c_i + x[i] s_i
#include "kernels/rope/rope.hpp"

#include "kernels/rope/rotary.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void rope(In<T> x, In<i32> positions, In<f32> cos_sin, Out<T> out, Constexpr heads, Constexpr head_dim,
          Constexpr max_pos) {
  const uint32_t per_lane = config("per_lane");
  HeadRow h = head_row(heads, head_dim);
  if_(h.valid, [&] {
    Val half = named("half", head_dim / 2u);
    Val cs = cache_row_start(positions, h.token, max_pos, head_dim);
    for_row_chunks(simd_lane(), lit(kSimdLanes), half, per_lane, [&](Val c, uint32_t count) {
      Val lo = h.start + c, hi = h.start + half + c;
      std::vector<Val> outs_lo, outs_hi;
      for (uint32_t k = 0; k < count; ++k) {
        Val a = load<f32>(x[column(lo, k)]), b = load<f32>(x[column(hi, k)]);
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

KernelSpec rope_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("rope", ir::Mode::Elementwise,
                                {"x", "positions", "cos_sin", "out", "heads", "head_dim", "max_pos"},
                                MTILE_FLOAT_VARIANTS(rope));
  k.family = "rope";
  k.summary = "rotary embedding, rotate-half (NeoX) pairs, cos/sin from a cache row per token position";
  rotary_contract(k);
  k.reference = [](const Shape& s, HostTensors& t) { rotary_reference(s, t, t["x"], false); };
  return k;
}

}  // namespace mtile::lib
