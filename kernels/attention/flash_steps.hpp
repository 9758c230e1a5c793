// The steps flash attention's tensor-core bodies share (attention_prefill's, attention_decode's
// mma body): staging key rows into threadgroup memory, and the online softmax of a lane's two rows
// of mma's C layout.
#pragma once
#include <cmath>
#include <deque>
#include <vector>

#include "kernels/softmax/online_softmax.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::lib::flash {

using namespace dsl;

inline constexpr uint32_t kChunk = 8;  // elements per async copy: 16 bytes
inline constexpr double kLog2e = 1.4426950408889634;

// Stages key rows [first, first + count) of src (rows of d, from element `base`) into tile
// (count x ld, from element *at where given): rows past seq repeat the last one, whose scores are
// masked.
inline void stage(const Tensor& src, const TgArray& tile, const Val& base, const Val& first, uint32_t count, uint32_t d,
                  uint32_t ld, const Val& seq, uint32_t threads, const Val* at = nullptr) {
  const uint32_t per_row = d / kChunk, chunks = count * per_row;
  for (uint32_t c0 = 0; c0 < chunks; c0 += threads) {
    Val c = tid() + c0;
    auto body = [&] {
      Val r = c / per_row, col = c % per_row * kChunk;
      Val row = min(first + r, seq - 1u);
      Val dst = r * ld + col;
      copy_async(tile[at ? *at + dst : dst], src[base + row * d + col], kChunk);
    };
    if (c0 + threads <= chunks)
      body();
    else
      if_(c < chunks, body);
  }
}

// With Config lazy_rescale 1, how far (log2 units) a row's scores may pass the max its weights
// are taken against before that max moves: P = exp2(s - max) up to 2^8 (no overflow in f32, f16
// or bf16, the same relative rounding), and the output so far keeps its scale, no multiply of the
// accumulator, in a block where no row of the simdgroup moves (FlashAttention-4's lazy rescale).
// Scores settle early: after a row's first blocks its max rarely grows by 8 (a factor of 256).
inline constexpr float kMaxSlack = 8.0f;

// The online softmax of a lane's two query rows (mma's C layout: elements 0-1 are row g, 2-3 row g
// + 8): the max the weights are taken against (the same in the row's four lanes; the row's max,
// or with `lazy` within kMaxSlack of it) and the lane's part of the sum. With `live` 1 only row g
// holds scores (the decode's query heads when the group has at most 8): row g + 8's weights are 0
// and cost nothing.
struct RowSoftmax {
  std::deque<Var> m, l;
  bool lazy = false;
  uint32_t live = 2;
  Val moved = lit(true);  // after step: whether either of the lane's rows took a new max (alpha != 1)
  explicit RowSoftmax(bool lazy, uint32_t live = 2) : lazy(lazy), live(live) {
    for (int r = 0; r < 2; ++r) {
      m.emplace_back("run_max", lit(-INFINITY));
      l.emplace_back("run_sum", lit(0.0f));
    }
  }
  // One block's scores s (log2 units, masked; C elements of tile n at 4 n ..): the rows' block
  // max (two shuffles over the row's lanes), a new max where it passes the old by more than
  // kMaxSlack, P = exp2(s - max) rounded to T into p in A's layout (keys 16 i .. 16 i + 15 in p[i]:
  // a C tile pair's elements are an A fragment's), the sums. Gives each row's factor for the output
  // so far (1 where its max stays) and sets `moved`.
  template <class T>
  std::vector<Val> step(const std::vector<Val>& s, std::vector<MmaA>& p) {
    std::vector<Val> row_max = {m[0].get(), m[1].get()};
    for (size_t i = 0; i < s.size(); ++i)
      if ((i % 4) >> 1 < live) row_max[(i % 4) >> 1] = max(row_max[(i % 4) >> 1], s[i]);
    std::vector<Val> shift, alpha, grows;
    for (uint32_t r = 0; r < 2; ++r) {
      if (r >= live) {  // no scores: weights 0, the output's rows stay 0
        shift.push_back(lit(0.0f));
        alpha.push_back(lit(1.0f));
        grows.push_back(lit(false));
        continue;
      }
      for (uint32_t mask = 1; mask <= 2; mask *= 2) row_max[r] = max(row_max[r], simd_shuffle_xor(row_max[r], mask));
      if (!lazy) {
        shift.push_back(named("shift", finite_shift(row_max[r])));
        alpha.push_back(named("alpha", exp2_ftz(m[r].get() - shift[r])));
        m[r] = row_max[r];
        continue;
      }
      // -inf + slack is -inf: a row's first finite score always sets its max.
      grows.push_back(named("max_grows", row_max[r] > m[r] + kMaxSlack));
      Val m_new = named("max_used", select(grows[r], row_max[r], m[r].get()));
      shift.push_back(named("shift", finite_shift(m_new)));
      alpha.push_back(named("alpha", select(grows[r], exp2_ftz(m[r].get() - shift[r]), lit(1.0f))));
      m[r] = m_new;
    }
    if (lazy) moved = named("max_moved", live > 1 ? grows[0] || grows[1] : grows[0]);
    std::vector<Val> sum = {l[0] * alpha[0], live > 1 ? l[1] * alpha[1] : l[1].get()};
    p.assign(s.size() / 8, MmaA{});
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t e = i % mma_layout::kCElements, n = i / mma_layout::kCElements;
      if (e >> 1 >= live) {
        p[n / 2].v[(n % 2) * 4 + e] = cast<T>(lit(0.0f));
        continue;
      }
      Val x = exp2_ftz(s[i] - shift[e >> 1]);
      sum[e >> 1] = sum[e >> 1] + x;
      p[n / 2].v[(n % 2) * 4 + e] = cast<T>(x);
    }
    l[0] = sum[0];
    if (live > 1) l[1] = sum[1];
    return alpha;
  }
  // Stores the output tiles (16 x 8, columns 8 t ..) of the simdgroup's rows from row0, each
  // row divided by its sum over its four lanes.
  void store(const Tensor& out, const U32& d, const Val& q_base, const Val& seq, const Val& row0,
             std::vector<MmaAcc> tiles) const {
    std::vector<Val> inv;
    for (uint32_t r = 0; r < 2; ++r) {
      Val total = l[r].get();
      for (uint32_t mask = 1; mask <= 2; mask *= 2) total = total + simd_shuffle_xor(total, mask);
      inv.push_back(named("inv_sum", 1.0f / total));
    }
    MatrixRef dst = MatrixRef(out, d, q_base).bounded_rows(seq);
    for (uint32_t t = 0; t < tiles.size(); ++t) {
      for (uint32_t e = 0; e < mma_layout::kCElements; ++e) tiles[t].v[e] = tiles[t].v[e] * inv[e >> 1];
      store_mma_acc(dst, row0, t * 8, tiles[t]);
    }
  }
};

}  // namespace mtile::lib::flash
