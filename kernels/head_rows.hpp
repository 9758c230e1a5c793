// Kernels over attention heads, x = [tokens, heads, head_dim]: one simdgroup per head, a
// threadgroup per token and group of heads_per_group heads (grid = tokens x ceil(heads /
// heads_per_group)), so a head's reduction is a simd_sum with no barrier, and a token's
// position (rope) is read once per threadgroup.
#pragma once
#include "kernels/row_loops.hpp"
#include "mtile/spec.hpp"

namespace mtile::lib {

struct HeadRow {
  dsl::Val token;  // program_id(0)
  dsl::Val valid;  // this simdgroup has a head (the last group may have fewer than heads_per_group)
  dsl::Val start;  // the head's first element: (token * heads + head) * head_dim
};

// The head of the calling simdgroup. Reads config("heads_per_group").
inline HeadRow head_row(const dsl::Constexpr& heads, const dsl::Constexpr& head_dim) {
  using namespace dsl;
  Val token = named("token", program_id(0));
  Val head = named("head", program_id(1) * dsl::config("heads_per_group") + simd_group());
  return {token, head < heads, named("head_start", (token * heads + head) * head_dim)};
}

// The contract of a head kernel: dims tokens, heads, head_dim (and `extra_dims`); Config
// heads_per_group (4, fewer for fewer heads: 128 threads) and per_lane, the columns a lane takes at
// once: the least power of two that covers `columns` (head_dim, or head_dim / 2 for the pairs of
// a rotation) with the 32 lanes, at most 8 (16 bytes of bf16). The geometry is pinned whole.
inline void head_contract(KernelSpec& k, const rule::Expr& columns, std::vector<std::string> extra_dims = {}) {
  using rule::var;
  rule::Expr heads = var("heads"), hpg = var("heads_per_group");
  k.dims = {"tokens", "heads", "head_dim"};
  for (std::string& d : extra_dims) k.dims.push_back(std::move(d));
  k.config = {{"heads_per_group", rule::min(heads, 4)},
              {"per_lane", rule::min(rule::pow2_ceil(rule::ceil_div(columns, var("simd_width"))), 8)}};
  k.dispatch = {.grid = var("tokens"), .grid_y = rule::ceil_div(heads, hpg), .tpg = hpg * var("simd_width")};
  k.preconditions = {var("grid") == var("tokens"), var("grid_y") == rule::ceil_div(heads, hpg),
                     var("grid_z") == 1,           var("tpg") == hpg * kSimdLanes,
                     var("per_lane") >= 1,         var("head_dim") >= 1};
}

}  // namespace mtile::lib
