// attention_prefill: causal attention over a whole prompt, grouped-query, flash-attention style.
//   out[b, h, i, :] = softmax_{j <= i}(scale * q[b, h, i, :] . k[b, h / group, j, :]) @ v[b, h / group, :, :]
// q, out = [batch, heads, seq, d], k, v = [batch, kv_heads, seq, d], contiguous (torch's
// scaled_dot_product_attention layout); group = heads / kv_heads; d a multiple of 16 up to 256.
//
// Threadgroup (query block, head, b) takes `warps` * 16 query rows, the last block first (it has
// the most keys: the causal mask makes the work grow with the block). A simdgroup owns 16 rows: it
// holds their q as MMA A fragments (d / 16 of them) and their output as f32 accumulators (d / 8
// tiles of 16 x 8), and walks the keys `bn` at a time up to its block's last row: S = q K^T on
// tensor cores (K staged in threadgroup memory, read as n-major B), masked (key > row, key >= seq:
// -inf) and scaled by scale * log2(e); the online softmax keeps each row's running max and the
// lane's part of its sum in f32 (the four lanes of a row hold its 8-column slices: two shuffles
// give the row's max); P = exp2(S - max), rounded to the input type, is already in the A layout
// of the next product (a C tile's elements are an A fragment's halves: mtile/mma_layout.hpp), so
// O += P V takes V staged in threadgroup memory as k-major B. K of the next block is fetched
// (copy_async) while P V is computed, and V of a block while its S is. Where the target has
// warpgroup MMA (sm_90a's wgmma) and d is a multiple of 64, attention_prefill_warpgroups takes its
// place: the same walk with both products as mma_asyncs (K and V from threadgroup memory, P from
// registers); with Config tma (targets with tile copies) thread 0 brings q, K and V in as boxes on
// mbarriers, which the others wait on instead of copying.
#include <cmath>
#include <deque>
#include <optional>

#include "kernels/attention/attention.hpp"
#include "kernels/attention/flash_steps.hpp"
#include "kernels/linear/linear.hpp"
#include "kernels/softmax/online_softmax.hpp"
#include "kernels/spec_helpers.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;
using namespace flash;

// Stages rows [first, first + count) of src (rows of d, from element `base`; rows past seq repeat
// the last one) into tiles[at ..] as swizzled 128-byte rows (mtile/dsl_matrix.hpp) in blocks of
// 64 columns, each block `count` rows: sixteen threads copy a row of d = 128.
void stage_swizzled(const Tensor& src, const TgArray& tiles, const Val& at, const Val& base, const Val& first,
                    uint32_t count, uint32_t d, const Val& seq, uint32_t threads) {
  const uint32_t per_row = d / kChunk, chunks = count * per_row;
  for (uint32_t c0 = 0; c0 < chunks; c0 += threads) {
    Val c = tid() + c0;
    auto body = [&] {
      Val r = c / per_row, chunk = c % per_row;  // chunk c % 8 of 64-column block c / 8 of row r
      Val row = min(first + r, seq - 1u);
      copy_async(tiles[at + chunk / 8u * (count * 64) + swizzle128_index(r, chunk % 8u * kChunk).val],
                 src[base + row * d + chunk * kChunk], kChunk);
    };
    if (c0 + threads <= chunks)
      body();
    else
      if_(c < chunks, body);
  }
}

// The body on warpgroup MMA (targets with async_mma, d a multiple of 64): each of warps / 4
// warpgroups owns 64 query rows, their q staged once as swizzled rows; per block of bn keys S = q
// K^T is d / 16 mma_asyncs of n = bn (K's rows are B's n), the online softmax runs on S's
// accumulator (mma's C layout, as the mma body's), P stays in registers, already in the A layout of
// the next product (as in the mma body), and O += P V is bn / 16 mma_asyncs of n = d with A from
// registers and V read as a [k][n] B (its rows are keys).
// K of the next block is fetched while the softmax runs, V of a block while its S is computed.
template <class T>
void attention_prefill_warpgroups(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Val& scale, const Val& heads, const Val& kv_heads, const Val& seq, uint32_t d) {
  const uint32_t warps = config("warps"), bn = config("bn");
  const uint32_t threads = warps * 32, bm = warps * 16, groups = warps / 4;
  if (config("resident", 0)) resident_threadgroups(config("resident"));
  const uint32_t q_elems = bm * d, kv_elems = bn * d;
  // One array: q, K, V; every part whole atoms (512 elements).
  TgArray tiles = threadgroup_array(k.elem, q_elems + 2 * kv_elems);
  const Val k_at = lit(q_elems), v_at = lit(q_elems + kv_elems);

  Val block = named("q_block", grid_size(0) - 1u - program_id(0));
  Val h = named("head", program_id(1)), b = named("batch", program_id(2));
  Val q_base = named("q_base", (b * heads + h) * seq * d);
  Val kv_base = named("kv_base", (b * kv_heads + h / (heads / kv_heads)) * seq * d);
  Val q0 = named("q0", block * bm);
  Val group = named("warpgroup", simd_group() / 4u);
  Val row0 = named("warp_row0", q0 + simd_group() * 16u);  // this simdgroup's first query row
  Val qk_scale = named("qk_scale", scale * static_cast<float>(kLog2e));
  Val q_at = named("q_at", group * (64 * d));

  WarpgroupAccVar o(warpgroup_acc_zero(d));
  RowSoftmax rows(config("lazy_rescale", 0) != 0);
  std::vector<Val> qrow;  // the lane's two query rows
  for (uint32_t r = 0; r < 2; ++r) qrow.push_back(named("q_row", row0 + mma_layout::c_row(simd_lane(), 2 * r)));

  Val blocks = named("key_blocks", (min(q0 + bm, seq) + (bn - 1)) / bn);
  // With `tma` thread 0 copies each 64-column block of rows as one box of the 3-D view [d, seq,
  // batch * heads] (rows past seq arrive as zeros; the mask keeps them out), completing on mbarrier
  // 0 (q), 1 (K) or 2 (V); else every thread copies 16 bytes at a time (rows past seq repeat the
  // last one).
  const bool tma = config("tma", 0) != 0;
  std::optional<Mbarriers> bars;
  if (tma) {
    bars = mbarriers(3);
    if_(tid() == 0u, [&] {
      for (uint32_t i = 0; i < 3; ++i) bars->init(i, 1u);
    });
    barrier();
  }
  const uint32_t elem_bytes = static_cast<uint32_t>(storage_bytes(q.elem));
  // The 64-column blocks of rows [first, first + count) of slice (b, slice) of src, which has
  // `slices` a batch, into tiles[at ..] (thread 0).
  auto copy_rows = [&](const Tensor& src, const Val& slices, const Val& slice, const Val& at, const Val& first,
                       uint32_t count, uint32_t bar) {
    TileView view{src, {d, seq, grid_size(2) * slices}, {d, seq * d}, {64, count, 1}, 128};
    for (uint32_t c = 0; c < d / 64; ++c)
      copy_tile(
          tiles[at + c * (count * 64)], view,
          {lit(static_cast<int32_t>(c * 64)), first.cast(ScalarType::i32), (b * slices + slice).cast(ScalarType::i32)},
          *bars, bar);
  };
  auto stage_kv = [&](const Tensor& src, const Val& at, const Val& key0, uint32_t bar) {
    if (!tma) return stage_swizzled(src, tiles, at, kv_base, key0, bn, d, seq, threads);
    if_(tid() == 0u, [&] {
      bars->arrive_expect(bar, bn * d * elem_bytes);
      copy_rows(src, kv_heads, h / (heads / kv_heads), at, key0, bn, bar);
    });
  };
  auto commit = [&] {
    if (!tma) copy_async_commit();
  };
  // q's rows of each warpgroup as 64-row blocks of 64 columns.
  if (tma)
    if_(tid() == 0u, [&] {
      bars->arrive_expect(0u, q_elems * elem_bytes);
      for (uint32_t g = 0; g < groups; ++g) copy_rows(q, heads, h, lit(g * 64 * d), q0 + g * 64, 64, 0);
    });
  else
    for (uint32_t g = 0; g < groups; ++g)
      stage_swizzled(q, tiles, lit(g * 64 * d), q_base, q0 + g * 64, 64, d, seq, threads);
  stage_kv(k, k_at, lit(0u), 1);
  if (tma) bars->wait(0u, 0u);  // q
  commit();
  for_(0u, blocks, 1u, [&](Val j) {
    Val key0 = named("key0", j * bn);
    stage_kv(v, v_at, key0, 2);
    commit();
    if (tma) {
      bars->wait(1u, j & 1u);  // K of this block: its copies wrote it, visible to every waiter
      mma_fence();
    } else {
      copy_async_wait(1);  // q and K of this block
      mma_fence();
      barrier();
    }
    WarpgroupAcc s = warpgroup_acc_zero(bn);
    for (uint32_t kk = 0; kk < d; kk += 16)
      s = mma_async(tiles, swizzle128_rows(q_at + kk / 64 * (64 * 64), 0u, kk % 64),
                    swizzle128_rows(k_at + kk / 64 * (bn * 64), 0u, kk % 64), s);
    s = mma_wait(0, s);
    barrier();  // every warpgroup has read K: the next block's may come in
    if_(j + 1u < blocks, [&] { stage_kv(k, k_at, key0 + bn, 1); });
    commit();

    // Scores in log2 units, masked where a key of the block passes the threadgroup's first row;
    // the rows' new max over the block. A row sees the block's first `seen` keys (key <= row); keys
    // past seq are seen only by rows past seq, never stored.
    std::deque<Var> scaled;
    for (uint32_t i = 0; i < s.v.size(); ++i) scaled.emplace_back("score", s.v[i] * qk_scale);
    if_(key0 + bn > q0, [&] {
      std::vector<Val> seen;
      for (uint32_t r = 0; r < 2; ++r) seen.push_back(named("seen", max(qrow[r] + 1u, key0) - key0));
      for (uint32_t i = 0; i < s.v.size(); ++i) {
        const uint32_t e = i % mma_layout::kCElements;
        Val col = mma_layout::c_col(simd_lane(), e) + i / mma_layout::kCElements * 8;
        scaled[i] = select(col < seen[e >> 1], scaled[i].get(), lit(-INFINITY));
      }
    });
    std::vector<MmaA> p;
    std::vector<Val> alpha = rows.step<T>(std::vector<Val>(scaled.begin(), scaled.end()), p);
    auto rescaled = [&](WarpgroupAcc acc) {
      for (uint32_t i = 0; i < acc.v.size(); ++i) acc.v[i] = acc.v[i] * alpha[(i % mma_layout::kCElements) >> 1];
      return acc;
    };
    WarpgroupAcc acc = o.get();
    if (rows.lazy)
      if_(rows.moved, [&] { o = rescaled(o.get()); });  // a simdgroup whose rows all keep their max skips it
    else
      acc = rescaled(acc);

    if (tma) {
      bars->wait(2u, j & 1u);  // V of this block
      mma_fence();             // P and the rescaled accumulator reach the mma_asyncs
    } else {
      copy_async_wait(1);  // V of this block
      mma_fence();         // V's copies, P and the rescaled accumulator reach the mma_asyncs
      barrier();
    }
    if (rows.lazy) acc = o.get();
    for (uint32_t kk = 0; kk < bn; kk += 16)
      acc = mma_async(tiles, p[kk / 16], swizzle128_rows_kn(v_at, kk, bn * 64), acc);
    o = mma_wait(0, acc);
    barrier();  // every warpgroup has read V: the next block's may come in
  });

  std::vector<MmaAcc> tiles_out;
  WarpgroupAcc acc = o.get();
  for (uint32_t t = 0; t < d / 8; ++t) tiles_out.push_back(acc.tile(t));
  rows.store(out, d, q_base, seq, row0, tiles_out);
}

template <class T>
void attention_prefill(In<T> q, In<T> k, In<T> v, Out<T> out, Scalar<f32> scale, Constexpr heads, Constexpr kv_heads,
                       Constexpr seq, Constexpr d) {
  if (config("warpgroup", 0))
    return attention_prefill_warpgroups<T>(q, k, v, out, scale, heads, kv_heads, seq, config("dtiles") * 16);
  const uint32_t warps = config("warps"), bn = config("bn"), dtiles = config("dtiles");
  const uint32_t dd = dtiles * 16, ld = dd + 8, threads = warps * 32, bm = warps * 16;
  const uint32_t ntiles = bn / 8, otiles = dd / 8;
  TgArray k_tile = threadgroup_array(k.elem, bn * ld), v_tile = threadgroup_array(v.elem, bn * ld);

  Val block = named("q_block", grid_size(0) - 1u - program_id(0));
  Val h = named("head", program_id(1)), b = named("batch", program_id(2));
  Val q_base = named("q_base", (b * heads + h) * seq * d);
  Val kv_base = named("kv_base", (b * kv_heads + h / (heads / kv_heads)) * seq * d);
  Val q0 = named("q0", block * bm);
  Val row0 = named("warp_row0", q0 + simd_group() * 16u);  // this simdgroup's first query row
  Val qk_scale = named("qk_scale", scale * static_cast<float>(kLog2e));

  MatrixRef qm = MatrixRef(q, d, q_base).bounded_rows(seq);
  std::vector<MmaA> qa;
  for (uint32_t t = 0; t < dtiles; ++t) qa.push_back(load_mma_a(qm, row0, t * 16));

  std::vector<std::unique_ptr<MmaAccVar>> o;
  for (uint32_t t = 0; t < otiles; ++t) o.push_back(std::make_unique<MmaAccVar>(mma_zero()));
  RowSoftmax rows(config("lazy_rescale", 0) != 0);
  std::vector<Val> qrow;  // the lane's two query rows
  for (uint32_t r = 0; r < 2; ++r) qrow.push_back(named("q_row", row0 + mma_layout::c_row(simd_lane(), 2 * r)));

  // Key blocks up to the threadgroup's last row (and seq).
  Val blocks = named("key_blocks", (min(q0 + bm, seq) + (bn - 1)) / bn);
  // Rows of ld = d + 8 elements, a multiple of 8: fragments are read 8 x 8 at a time (ldmatrix).
  MatrixRef km = MatrixRef(k_tile, ld).aligned_rows(), vm = MatrixRef(v_tile, ld).aligned_rows();
  stage(k, k_tile, kv_base, lit(0u), bn, dd, ld, seq, threads);
  copy_async_commit();
  for_(0u, blocks, 1u, [&](Val j) {
    Val key0 = named("key0", j * bn);
    stage(v, v_tile, kv_base, key0, bn, dd, ld, seq, threads);
    copy_async_commit();
    copy_async_wait(1);  // K of this block
    barrier();
    std::vector<MmaAcc> s;
    for (uint32_t n = 0; n < ntiles; n += 2) {  // two key tiles of 8 at a time
      MmaAcc acc0 = mma_zero(), acc1 = mma_zero();
      for (uint32_t t = 0; t < dtiles; ++t) {
        std::array<MmaB, 2> kb = load_mma_b_nk_x2(km, n * 8, t * 16);
        acc0 = mma(qa[t], kb[0], acc0);
        acc1 = mma(qa[t], kb[1], acc1);
      }
      s.push_back(acc0);
      s.push_back(acc1);
    }
    barrier();  // every simdgroup has read K: the next block's may come in
    if_(j + 1u < blocks, [&] { stage(k, k_tile, kv_base, key0 + bn, bn, dd, ld, seq, threads); });
    copy_async_commit();

    // Scores in log2 units, masked; the rows' softmax step.
    std::vector<Val> scores;
    for (uint32_t n = 0; n < ntiles; ++n)
      for (uint32_t e = 0; e < mma_layout::kCElements; ++e) {
        Val key = key0 + (n * 8 + mma_layout::c_col(simd_lane(), e));
        scores.push_back(select(key <= qrow[e >> 1] && key < seq, s[n].v[e] * qk_scale, lit(-INFINITY)));
      }
    std::vector<MmaA> p;
    std::vector<Val> alpha = rows.step<T>(scores, p);
    auto rescale = [&] {
      for (uint32_t t = 0; t < otiles; ++t) {
        MmaAcc acc = o[t]->get();
        for (uint32_t e = 0; e < mma_layout::kCElements; ++e) acc.v[e] = acc.v[e] * alpha[e >> 1];
        *o[t] = acc;
      }
    };
    if (rows.lazy)
      if_(rows.moved, rescale);  // a simdgroup whose rows all keep their max skips it
    else
      rescale();

    copy_async_wait(1);  // V of this block
    barrier();
    for (uint32_t i = 0; i < ntiles / 2; ++i)
      for (uint32_t t = 0; t < otiles; t += 2) {  // V transposed as it loads, two tiles of 8 columns
        std::array<MmaB, 2> vb = load_mma_b_kn_x2(vm, i * 16, t * 8);
        *o[t] = mma(p[i], vb[0], *o[t]);
        *o[t + 1] = mma(p[i], vb[1], *o[t + 1]);
      }
    barrier();  // every simdgroup has read V: the next block's may come in
  });

  std::vector<MmaAcc> tiles_out;
  for (uint32_t t = 0; t < otiles; ++t) tiles_out.push_back(o[t]->get());
  rows.store(out, d, q_base, seq, row0, tiles_out);
}

}  // namespace

KernelSpec attention_prefill_spec() {
  KernelSpec k;
  k.def = define_half_kernel("attention_prefill", ir::Mode::Elementwise,
                             {"q", "k", "v", "out", "scale", "heads", "kv_heads", "seq", "d"},
                             MTILE_HALF_VARIANTS(attention_prefill));
  k.family = "attention";
  k.summary = "causal attention over a prompt (GQA), tensor-core MMA (wgmma on sm_90a), online softmax in f32";
  using rule::var;
  rule::Expr batch = var("batch"), heads = var("heads"), kv_heads = var("kv_heads"), seq = var("seq"), d = var("d");
  k.dims = {"batch", "heads", "kv_heads", "seq", "d"};
  // Warpgroup MMA where the target has it (async_mma: sm_90a, the CPU engine) and d is a multiple
  // of 64 (swizzled rows of 64 columns) whose q, K and V of 64 keys fit: 4 simdgroups (one
  // warpgroup, 64 query rows) a threadgroup, 64 keys a block. Else mma: 4 simdgroups (64 query
  // rows); 64 keys a block, 32 above d = 128 (registers) or where K and V of 64 keys (2 * 64 * (d +
  // 8) 16-bit elements) pass the threadgroup memory. tma: the warpgroup body's copies by tile
  // copies where the target has them and 64 bytes of mbarriers fit beside the tiles (H200, b1
  // s4096: 345.5 -> 313.0 us, s2048 113.4 -> 104.7). resident 4 on that body at d = 128, where
  // four threadgroups' tiles fit an SM and 128 registers a thread hold it without a spill (ptxas,
  // sm_90a: 136 uncapped, three an SM), with lazy_rescale (kMaxSlack) on the tile-copy body
  // (H200, us, rule / resident 4 / both: b1 s4096 315.7 / 308.4 / 301.6, b8 2375.0 / 2280.9 /
  // 2251.8, b1 s2048 105.4 / 108.1 / 105.8; lazy_rescale alone b1 s4096 311.1; bench/NOTES.md
  // twenty-fourth session).
  rule::Expr shared = var("shared_memory"), wg = var("warpgroup"), tma = var("tma");
  k.config = {{"warpgroup", rule::select(var("async_mma") == 1 && d % 64 == 0 && shared >= 3 * 64 * d * 2, 1, 0)},
              {"warps", 4},
              {"bn", rule::select(wg == 1 || (d <= 128 && shared >= 2 * 64 * (d + 8) * 2), 64, 32)},
              {"dtiles", d / 16},
              {"tma", rule::select(wg == 1 && var("tile_copy") == 1 && shared >= 3 * 64 * d * 2 + 64, 1, 0)},
              {"lazy_rescale", tma},
              {"resident", rule::select(tma == 1 && d == 128 && 4 * (3 * 64 * d * 2 + 64) <= shared &&
                                            var("registers_per_sm") >= 4 * 128 * 128,
                                        4, 0)}};
  k.dispatch = {.grid = rule::ceil_div(seq, var("warps") * 16),
                .grid_y = heads,
                .grid_z = batch,
                .tpg = var("warps") * var("simd_width")};
  k.preconditions = {
      batch >= 1,
      kv_heads >= 1,
      heads >= kv_heads,
      heads % kv_heads == 0,
      seq >= 1,
      d >= 16,
      d % 16 == 0,
      d <= 256,
      var("simd_width") == 32,
      var("dtiles") * 16 == d,
      var("warps") >= 1,
      var("bn") >= 16,
      var("bn") % 16 == 0,
      var("tpg") == var("warps") * 32,
      var("grid") == rule::ceil_div(seq, var("warps") * 16),
      var("grid_y") == heads,
      var("grid_z") == batch,
      wg <= 1,
      var("lazy_rescale") <= 1,
      // Warpgroups of 64 rows, d in swizzled rows of 64 columns, S of n = bn.
      wg == 0 || (var("async_mma") == 1 && d % 64 == 0 && var("warps") % 4 == 0 && var("bn") <= 256),
      // q, K and V by tile copies: the warpgroup body's, boxes of up to 256 rows.
      var("tma") == 0 || (var("tma") == 1 && wg == 1 && var("tile_copy") == 1),
      // resident: threadgroups an SM the warpgroup body's registers are capped for (0: no cap).
      var("resident") <= 8,
      var("resident") == 0 || wg == 1,
  };
  k.sizes = {{"q", batch * heads * seq * d},
             {"k", batch * kv_heads * seq * d},
             {"v", batch * kv_heads * seq * d},
             {"out", batch * heads * seq * d}};
  k.launch_constexprs = {"seq"};  // prompts of every length share one compiled kernel
  k.inits = {{"scale", Init::constant(0.3)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t batch = dim(s, "batch"), heads = dim(s, "heads"), kv_heads = dim(s, "kv_heads"), seq = dim(s, "seq"),
             d = dim(s, "d");
    uint64_t group = heads / kv_heads;
    const double scale = t["scale"][0];
    const auto &q = t["q"], &kk = t["k"], &v = t["v"];
    auto& out = t["out"];
    // One item a (batch, head, query row): the rows' costs differ (query i sees keys 0 .. i).
    spec::parallel_for(batch * heads * seq, batch * heads * seq * (seq + 1) * d, [&](uint64_t item) {
      uint64_t bh = item / seq, i = item % seq, b = bh / heads, h = bh % heads;
      uint64_t qa = (bh * seq + i) * d, kva = (b * kv_heads + h / group) * seq * d;
      std::vector<double> w(i + 1);
      attend_reference(&q[qa], &kk[kva], &v[kva], i + 1, d, scale, &out[qa], w);
    });
  };
  // P is rounded to the input type before P V, as flash attention does: each output is an average
  // of v with weights off by up to half a step of that type.
  k.tolerance = {{ScalarType::bf16, {5e-3, 1e-2}}, {ScalarType::f16, {8e-4, 1.5e-3}}};
  k.bytes = var("dtype_bytes") * (2 * batch * heads * seq * d + 2 * batch * kv_heads * seq * d);
  k.flops = 2 * batch * heads * d * seq * (seq + 1);  // q K^T and P V over the causal half
  k.example_shape = {{"batch", 1}, {"heads", 8}, {"kv_heads", 2}, {"seq", 256}, {"d", 128}};
  k.test_shapes = {
      {{"batch", 1}, {"heads", 1}, {"kv_heads", 1}, {"seq", 1}, {"d", 64}},
      {{"batch", 2}, {"heads", 4}, {"kv_heads", 1}, {"seq", 7}, {"d", 128}},
      {{"batch", 1}, {"heads", 2}, {"kv_heads", 2}, {"seq", 100}, {"d", 64}},
      {{"batch", 1}, {"heads", 4}, {"kv_heads", 2}, {"seq", 300}, {"d", 128}},
      {{"batch", 1}, {"heads", 2}, {"kv_heads", 1}, {"seq", 129}, {"d", 80}},
      {{"batch", 1}, {"heads", 1}, {"kv_heads", 1}, {"seq", 70}, {"d", 16}},
      {{"batch", 1}, {"heads", 2}, {"kv_heads", 1}, {"seq", 65}, {"d", 256}},
  };
  // mtile bench checks each case against the float64 reference on the host first;
  // bench/peers_matrix.py times seq 4096 against scaled_dot_product_attention (checked on the GPU).
  k.bench_shapes = {{{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 1024}, {"d", 128}}};
  return k;
}

}  // namespace mtile::lib
