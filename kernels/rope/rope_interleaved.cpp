// rope_interleaved: rotary position embedding on interleaved pairs (GPT-J): for each head of
// x[tokens, heads, head_dim] and i < head_dim / 2, with c, s = the cache row of the token's
// position (rotary.hpp):
//   out[2i] = x[2i] c_i - x[2i + 1] s_i;   out[2i + 1] = x[2i + 1] c_i + x[2i] s_i
#include "kernels/rope/rope.hpp"
#include "kernels/rope/rotary.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void rope_interleaved(In<T> x, In<i32> positions, In<f32> cos_sin, Out<T> out, Constexpr heads, Constexpr head_dim,
                      Constexpr max_pos) {
  const uint32_t per_lane = config("per_lane");
  HeadRow h = head_row(heads, head_dim);
  if_(h.valid, [&] {
    Val half = named("half", head_dim / 2u);
    Val cs = cache_row_start(positions, h.token, max_pos, head_dim);
    for_row_chunks(simd_lane(), lit(kSimdLanes), half, per_lane, [&](Val c, uint32_t count) {
      Val at = h.start + c * 2u;  // the chunk's 2 * count elements are consecutive
      std::vector<Val> outs;
      for (uint32_t k = 0; k < count; ++k) {
        Val a = load<f32>(x[column(at, 2 * k)]), b = load<f32>(x[column(at, 2 * k + 1)]);
        Val co = load(cos_sin[column(cs + c, k)]), si = load(cos_sin[column(cs + half + c, k)]);
        outs.push_back(a * co - b * si);
        outs.push_back(b * co + a * si);
      }
      for (uint32_t k = 0; k < 2 * count; ++k) store(out[column(at, k)], outs[k].cast<T>());
    });
  });
}

}  // namespace

KernelSpec rope_interleaved_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("rope_interleaved", ir::Mode::Elementwise,
                                {"x", "positions", "cos_sin", "out", "heads", "head_dim", "max_pos"},
                                MTILE_FLOAT_VARIANTS(rope_interleaved));
  k.family = "rope";
  k.summary = "rotary embedding on interleaved (GPT-J) pairs, cos/sin from a cache row per token position";
  rotary_contract(k);
  k.reference = [](const Shape& s, HostTensors& t) { rotary_reference(s, t, t["x"], true); };
  return k;
}

}  // namespace mtile::lib
