// What the rotary kernels share: the cos/sin cache row of a token, the contract and shapes, and
// the float64 reference.
//   cos_sin = [max_pos, head_dim] f32: row p holds cos(p * f_i) for i < head_dim / 2, then
//             sin(p * f_i) (vLLM's cos_sin_cache layout; mtile takes it from the caller, so any
//             base theta or scaling works, and no position's angle is rounded in the kernel)
//   positions = [tokens] i32: the position of each token (so offsets, packed sequences and
//             decode steps are the caller's choice). A position outside [0, max_pos) reads the
//             cache's nearest row, never past it.
// The rotation of a pair (a, b) by row p, column i: (a cos - b sin, b cos + a sin), in f32.
//   rotate-half (Llama, NeoX): pairs (i, i + head_dim / 2)
//   interleaved (GPT-J):       pairs (2i, 2i + 1)
#pragma once
#include <algorithm>

#include "kernels/head_rows.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

// The index of the token's cache row: min(max(positions[token], 0), max_pos - 1) * head_dim.
inline dsl::Val cache_row_start(const dsl::Tensor& positions, const dsl::Val& token, const dsl::Constexpr& max_pos,
                                const dsl::Constexpr& head_dim) {
  using namespace dsl;
  Val last = (max_pos - 1u).cast<i32>();
  Val pos = named("position", clamp(load(positions[token]), lit(0), last).cast<u32>());
  return named("cache_row", pos * head_dim);
}

// The contract of the rotary kernels (head_rows.hpp): a lane takes per_lane pairs at a time.
inline void rotary_contract(KernelSpec& k) {
  using rule::var;
  head_contract(k, var("head_dim") / 2, {"max_pos"});
  k.preconditions.push_back(var("head_dim") % 2 == 0);
  k.preconditions.push_back(var("max_pos") >= 1);
  rule::Expr elements = var("tokens") * var("heads") * var("head_dim");
  k.sizes = {
      {"x", elements}, {"out", elements}, {"positions", var("tokens")}, {"cos_sin", var("max_pos") * var("head_dim")}};
  // Positions 0..63: test shapes with max_pos below 64 see the clamp.
  k.inits = {{"positions", Init::uniform(0, 64)}};
  k.tolerance = spec::float_tolerances();
  // x and out once, the positions, and the cache rows the tokens read (at most one per token).
  k.bytes = 2 * elements * var("dtype_bytes") + 4 * var("tokens") +
            4 * rule::min(var("tokens"), var("max_pos")) * var("head_dim");
  k.example_shape = {{"tokens", 64}, {"heads", 32}, {"head_dim", 128}, {"max_pos", 4096}};
  k.test_shapes = {{{"tokens", 3}, {"heads", 5}, {"head_dim", 128}, {"max_pos", 100}},
                   {{"tokens", 4}, {"heads", 2}, {"head_dim", 64}, {"max_pos", 40}},
                   {{"tokens", 1}, {"heads", 3}, {"head_dim", 80}, {"max_pos", 64}},
                   {{"tokens", 2}, {"heads", 4}, {"head_dim", 256}, {"max_pos", 70}},
                   {{"tokens", 3}, {"heads", 1}, {"head_dim", 6}, {"max_pos", 20}}};
  k.bench_shapes = {{{"tokens", 1}, {"heads", 32}, {"head_dim", 128}, {"max_pos", 8192}},
                    {{"tokens", 256}, {"heads", 32}, {"head_dim", 128}, {"max_pos", 8192}},
                    {{"tokens", 4096}, {"heads", 32}, {"head_dim", 128}, {"max_pos", 8192}},
                    {{"tokens", 4096}, {"heads", 8}, {"head_dim", 128}, {"max_pos", 8192}},
                    {{"tokens", 4096}, {"heads", 16}, {"head_dim", 256}, {"max_pos", 8192}}};
}

// out = rotate(x) per head, x given (rms_norm_rope passes its normalised heads).
inline void rotary_reference(const Shape& s, HostTensors& t, const std::vector<double>& x, bool interleaved) {
  uint64_t tokens = dim(s, "tokens"), heads = dim(s, "heads"), hd = dim(s, "head_dim"), half = hd / 2;
  int64_t max_pos = dim(s, "max_pos");
  const auto &positions = t["positions"], &cs = t["cos_sin"];
  auto& out = t["out"];
  for (uint64_t tok = 0; tok < tokens; ++tok) {
    int64_t pos = std::clamp<int64_t>(static_cast<int64_t>(positions[tok]), 0, max_pos - 1);
    for (uint64_t h = 0; h < heads; ++h) {
      uint64_t base = (tok * heads + h) * hd;
      for (uint64_t i = 0; i < half; ++i) {
        double co = cs[pos * hd + i], si = cs[pos * hd + half + i];
        uint64_t ia = interleaved ? base + 2 * i : base + i, ib = interleaved ? ia + 1 : ia + half;
        out[ia] = x[ia] * co - x[ib] * si;
        out[ib] = x[ib] * co + x[ia] * si;
      }
    }
  }
}

}  // namespace mtile::lib
