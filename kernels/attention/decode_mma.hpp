// attention_decode's tensor-core body (Config mma 1; kernels/attention/attention_decode.cpp).
#pragma once
#include <memory>
#include <vector>

#include "kernels/attention/flash_steps.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/tile_ring.hpp"

namespace mtile::lib {

// The group's query heads are the rows of mma's A (rows past the group read as 0), so a simdgroup
// computes every head's scores of 8 keys in d / 16 mma where the FMA body spends a lane's multiply
// per head and element. The threadgroup stages blocks of simdgroups * bn rows of K and V
// (copy_async: K of the next block while P V runs, V of this one while S does) and each simdgroup
// takes bn of them: S = q K^T (K as n-major B), the online softmax of its rows, P in A's layout, O
// += P V (V as k-major B). Rows past `rows` (the split's) repeat its last and score -inf. Leaves
// each simdgroup's (max, sum, acc) of head g in sm_ml[(w * group + g) * 2 ..] and sm_acc[(w * group
// + g) * d ..] (write_state), the FMA body's layout with a pitch of d, for the merge.
// With Config stages >= 2, K and V come through that many buffers, filled stages - 1 blocks ahead.
// With Config tma also (targets with tile copies, d a multiple of 64) thread 0 fills them, each
// block's K and V as boxes of 64 columns of the view [d, seq, pairs] (rows past seq arrive as
// zeros), on an mbarrier a buffer (`full`); every thread arrives on `empty` once its simdgroup's
// reads of a buffer are done, which thread 0 waits on before refilling it: no barrier and no copy
// instruction in the other threads' loop.
struct KvView {
  dsl::Val seq, pairs, pair, begin;  // the view's rows and slices; the split's slice and first row
};

template <class T>
class DecodeMma {
 public:
  // Runs the walk over the split's rows.
  DecodeMma(const dsl::Tensor& q, const dsl::Tensor& k, const dsl::Tensor& v, const dsl::Val& q_scale,
            const dsl::Val& head0, const dsl::Val& kv_row0, const dsl::Val& rows, uint32_t d, uint32_t group,
            const KvView& view)
      : d_(d), group_(group), stages_(dsl::config("stages", 0)), softmax_(false, group <= 8 ? 1 : 2) {
    walk(q, k, v, q_scale, head0, kv_row0, rows, view);
  }
  void write_state(const dsl::TgArray& sm_acc, const dsl::TgArray& sm_ml) const;

 private:
  void walk(const dsl::Tensor& q, const dsl::Tensor& k, const dsl::Tensor& v, const dsl::Val& q_scale,
            const dsl::Val& head0, const dsl::Val& kv_row0, const dsl::Val& rows, const KvView& view);
  const uint32_t d_, group_, stages_;
  std::vector<std::unique_ptr<dsl::MmaAccVar>> o_;  // d / 8 tiles of 16 x 8: row g is head g
  flash::RowSoftmax softmax_;
};

template <class T>
void DecodeMma<T>::walk(const dsl::Tensor& q, const dsl::Tensor& k, const dsl::Tensor& v, const dsl::Val& q_scale,
                        const dsl::Val& head0, const dsl::Val& kv_row0, const dsl::Val& rows, const KvView& view) {
  using namespace dsl;
  const uint32_t d = d_, group = group_;
  const uint32_t bn = config("bn"), threads = config("threads"), block = threads / kSimdLanes * bn;
  const bool tma = config("tma", 0) != 0;
  const uint32_t ld = tma ? d : d + 8, dtiles = d / 16, otiles = d / 8;
  const uint32_t buffers = stages_ >= 2 ? stages_ : 1;
  TgArray k_tile = threadgroup_array(k.elem, buffers * block * ld);
  TgArray v_tile = threadgroup_array(v.elem, buffers * block * ld);
  MatrixRef qm = MatrixRef(q, d, head0 * d).bounded_rows(group);
  std::vector<MmaA> qa;
  for (uint32_t t = 0; t < dtiles; ++t) qa.push_back(load_mma_a(qm, 0u, t * 16));
  auto& o = o_;
  for (uint32_t t = 0; t < otiles; ++t) o.push_back(std::make_unique<MmaAccVar>(mma_zero()));
  flash::RowSoftmax& softmax = softmax_;

  MatrixRef km = MatrixRef(k_tile, ld).aligned_rows(), vm = MatrixRef(v_tile, ld).aligned_rows();
  Val base = named("kv_base", kv_row0 * d), key_off = named("warp_key0", simd_group() * bn);
  Val blocks = named("key_blocks", (rows + (block - 1)) / block);
  // Block rows [first, first + block) of src into the buffer from row *at (0 where not given).
  auto stage = [&](const Tensor& src, const TgArray& tile, const Val* at, const Val& first) {
    if (!at) return flash::stage(src, tile, base, first, block, d, ld, rows, threads);
    Val element = *at * ld;
    flash::stage(src, tile, base, first, block, d, ld, rows, threads, &element);
  };
  auto row = [&](const Val* at, const Val& r) { return at ? *at + r : r; };
  // This simdgroup's scores of the block, its K from buffer row *at on (0 where not given).
  auto scores_of = [&](const Val* at, const MatrixRef& km) {
    std::vector<MmaAcc> s;
    for (uint32_t n = 0; n < bn / 8; n += 2) {  // two key tiles of 8 at a time
      MmaAcc acc0 = mma_zero(), acc1 = mma_zero();
      for (uint32_t t = 0; t < dtiles; ++t) {
        std::array<MmaB, 2> kb = load_mma_b_nk_x2(km, row(at, key_off + n * 8), t * 16);
        acc0 = mma(qa[t], kb[0], acc0);
        acc1 = mma(qa[t], kb[1], acc1);
      }
      s.push_back(acc0);
      s.push_back(acc1);
    }
    return s;
  };
  // The online softmax of those scores (log2 units, keys past the split's rows -inf): P, and the
  // output so far rescaled.
  auto softmax_of = [&](const Val& key0, const std::vector<MmaAcc>& s) {
    std::vector<Val> scores;
    Val warp_key0 = named("block_key0", key0 + key_off);
    for (uint32_t n = 0; n < bn / 8; ++n)
      for (uint32_t e = 0; e < mma_layout::kCElements; ++e) {
        if (e >> 1 >= softmax.live) {  // rows 8 .. 15 hold no head
          scores.push_back(lit(-INFINITY));
          continue;
        }
        Val key = warp_key0 + (n * 8 + mma_layout::c_col(simd_lane(), e));
        scores.push_back(select(key < rows, s[n].v[e] * q_scale, lit(-INFINITY)));
      }
    std::vector<MmaA> p;
    std::vector<Val> alpha = softmax.template step<T>(scores, p);
    for (uint32_t t = 0; t < otiles; ++t) {
      MmaAcc acc = o[t]->get();
      for (uint32_t e = 0; e < 2 * softmax.live; ++e) acc.v[e] = acc.v[e] * alpha[e >> 1];
      *o[t] = acc;
    }
    return p;
  };
  // O += P V, V from buffer row *at on.
  auto accumulate = [&](const std::vector<MmaA>& p, const Val* at, const MatrixRef& vm) {
    for (uint32_t i = 0; i < bn / 16; ++i)
      for (uint32_t t = 0; t < otiles; t += 2) {  // V transposed as it loads, two tiles of 8 columns
        std::array<MmaB, 2> vb = load_mma_b_kn_x2(vm, row(at, key_off + i * 16), t * 8);
        *o[t] = mma(p[i], vb[0], *o[t]);
        *o[t + 1] = mma(p[i], vb[1], *o[t + 1]);
      }
  };

  if (tma) {
    const uint32_t bytes = 2 * block * d * static_cast<uint32_t>(storage_bytes(k.elem));
    TileView kv[2] = {{k, {d, view.seq, view.pairs}, {d, view.seq * d}, {64, block, 1}, 128},
                      {v, {d, view.seq, view.pairs}, {d, view.seq * d}, {64, block, 1}, 128}};
    // Block i's K and V, 64 columns a box.
    auto copies = [&](const Val& i, const Val& b, const Mbarriers& full) {
      Val first = (view.begin + i * block).cast(ScalarType::i32), pair = view.pair.cast(ScalarType::i32);
      for (uint32_t t = 0; t < 2; ++t)
        for (uint32_t c = 0; c < d / 64; ++c)
          copy_tile((t ? v_tile : k_tile)[b * (block * d) + c * (block * 64)], kv[t],
                    {lit(static_cast<int32_t>(c * 64)), first, pair}, full, b);
    };
    auto body = [&](const Val& j, const Val& b) {
      Val at = named("buf_at", b * (block * d));
      MatrixRef kt = MatrixRef(k_tile, d, at).swizzled128(block * 64),
                vt = MatrixRef(v_tile, d, at).swizzled128(block * 64);
      std::vector<MmaA> p = softmax_of(named("key0", j * block), scores_of(nullptr, kt));
      accumulate(p, nullptr, vt);
    };
    TileRing{stages_, threads, bytes, copies, body}.run(blocks);
    return;
  }
  if (stages_ >= 2) {
    // `stages` buffers of K and V, filled stages - 1 blocks ahead: one barrier a block, after
    // which every simdgroup is done with the buffer the fill below takes (the block before's).
    auto fill = [&](const Val& j) {
      Val at = named("buf_row", j % stages_ * block);
      stage(k, k_tile, &at, j * block);
      stage(v, v_tile, &at, j * block);
    };
    for (uint32_t b = 0; b + 1 < stages_; ++b) {
      if_(lit(b) < blocks, [&] { fill(lit(b)); });
      copy_async_commit();  // one group a block (empty past the last)
    }
    for_(0u, blocks, 1u, [&](Val j) {
      copy_async_wait(stages_ - 2);  // this block's K and V
      barrier();
      if_(j + (stages_ - 1) < blocks, [&] { fill(j + (stages_ - 1)); });
      copy_async_commit();
      Val key0 = named("key0", j * block), at = named("buf_row", j % stages_ * block);
      std::vector<MmaA> p = softmax_of(key0, scores_of(&at, km));
      accumulate(p, &at, vm);
    });
    return;
  }
  // One buffer each: K of the next block fetched while P V runs, V of this one while S does.
  if_(blocks > 0u, [&] { stage(k, k_tile, nullptr, lit(0u)); });
  copy_async_commit();
  for_(0u, blocks, 1u, [&](Val j) {
    Val key0 = named("key0", j * block);
    stage(v, v_tile, nullptr, key0);
    copy_async_commit();
    copy_async_wait(1);  // K of this block
    barrier();
    std::vector<MmaAcc> s = scores_of(nullptr, km);
    barrier();  // every simdgroup has read K: the next block's may come in
    if_(j + 1u < blocks, [&] { stage(k, k_tile, nullptr, key0 + block); });
    copy_async_commit();
    std::vector<MmaA> p = softmax_of(key0, s);
    copy_async_wait(1);  // V of this block
    barrier();
    accumulate(p, nullptr, vm);
    barrier();  // every simdgroup has read V: the next block's may come in
  });
}

template <class T>
void DecodeMma<T>::write_state(const dsl::TgArray& sm_acc, const dsl::TgArray& sm_ml) const {
  using namespace dsl;
  const uint32_t d = d_, group = group_;
  const flash::RowSoftmax& softmax = softmax_;
  // A row's sum is spread over its four lanes; its max is theirs alike.
  for (uint32_t r = 0; r < 2 && 8 * r < group; ++r) {
    Val head = named("head_row", mma_layout::c_row(simd_lane(), 2 * r));
    Val total = softmax.l[r].get();
    for (uint32_t mask = 1; mask <= 2; mask *= 2) total = total + simd_shuffle_xor(total, mask);
    if_(simd_lane() % 4u == 0u && head < group, [&] {
      Val at = (simd_group() * group + head) * 2u;
      store(sm_ml[at], softmax.m[r].get());
      store(sm_ml[at + 1u], total);
    });
  }
  for (uint32_t t = 0; t < d / 8; ++t) {
    MmaAcc acc = o_[t]->get();
    for (uint32_t e = 0; e < mma_layout::kCElements; ++e) {
      if (8 * (e >> 1) >= group) continue;  // rows 8 .. 15 hold no head
      Val head = mma_layout::c_row(simd_lane(), e);
      if_(head < group, [&] {
        store(sm_acc[(simd_group() * group + head) * d + (t * 8 + mma_layout::c_col(simd_lane(), e))], acc.v[e]);
      });
    }
  }
}

}  // namespace mtile::lib
