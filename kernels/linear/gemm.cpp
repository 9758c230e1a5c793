// gemm: out[i, j] = act(sum_k a[i, k] * w[j, k] (+ bias[j])) (+ residual[i, j]) for any M and N
// and K a multiple of 8: x @ W.T of a torch Linear, bf16 or f16 in, f32 accumulation (tensor-core
// MMA, mtile/dsl_matrix.hpp), out rounded once to T. Three kernels share one body: `gemm` (a, w,
// out), `gemm_bias` (a, w, bias, out) and `gemm_residual` (a, w, residual, out); the dim `act`
// picks the activation of gemm and gemm_bias (0 none, 1 silu, 2 gelu (erf)), a constexpr that a
// launch bakes into the code.
//
// A threadgroup computes a bm x bn tile of out with warps_m x warps_n simdgroups, each a block of
// (bm / warps_m) x (bn / warps_n) outputs, i.e. tm x tn MMA tiles of 16 x 8. K advances bk at a time
// through `stages` threadgroup buffers: copy_async fills the buffers of the next stages - 1 steps
// while the current one is multiplied (rows of a past M and of w past N read the last row, whose
// products are never stored; columns past K are zeros). Rows are padded to bk + 8 elements so that
// the 8 rows of an 8 x 8 fragment matrix hit 32 distinct banks. Where the target has warpgroup
// MMA (sm_90a's wgmma) and M is past 64, a second body (gemm_warpgroup_body) takes its place.
#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/linear/linear.hpp"
#include "kernels/spec_helpers.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kPad = 8;    // elements past bk in a staged row
constexpr uint32_t kChunk = 8;  // elements per async copy: 16 bytes of bf16/f16
// Threadgroup memory the producer body's mbarriers take past its buffers: two arrays of up to 4
// u64, each from a 16-byte offset.
constexpr uint32_t kTileBarrierBytes = 64;

enum class Extra { None, Bias, Residual };

// Where chunk c of 16 bytes of a staged tile comes from and goes: row r (of the tile's rows
// first ..), K-column kc (from k0), and its index in the threadgroup array.
struct ChunkPlace {
  Val r, kc, dst;
};

// Which threads stage a tile: `thread` (0 .. count - 1) of `count`.
struct Stagers {
  Val thread;
  uint32_t count;
};

// Copies `chunks` 16-byte chunks of src (rows x k, row-major) into tile, stager t taking chunks t,
// t + count, ...; rows past `rows` repeat the last one (their products are never stored),
// columns past k are zeros. `inside`: the caller knows every row and column is in bounds.
void stage_chunks(const Tensor& src, const TgArray& tile, uint32_t chunks, const Stagers& by, const Val& first,
                  const Val& rows, const Val& k, const Val& k0, const std::function<ChunkPlace(const Val&)>& place,
                  bool inside = false) {
  const uint32_t threads = by.count;
  for (uint32_t c0 = 0; c0 < chunks; c0 += threads) {
    Val c = by.thread + c0;
    auto body = [&] {
      ChunkPlace p = place(c);
      if (inside) return copy_async(tile[p.dst], src[(first + p.r) * k + k0 + p.kc], kChunk);
      Val row = min(first + p.r, rows - 1u);
      if_(
          k0 + p.kc < k, [&] { copy_async(tile[p.dst], src[row * k + k0 + p.kc], kChunk); },
          [&] {
            for (uint32_t e = 0; e < kChunk; ++e) store(tile[p.dst + e], lit(src.elem, 0.0));
          });
    };
    if (c0 + threads <= chunks)
      body();
    else
      if_(c < chunks, body);
  }
}

// Rows [first, first + count) x K-columns [k0, k0 + bk) of src into tile[buf_base ..] (count x
// (bk + kPad), row-major).
void stage(const Tensor& src, const TgArray& tile, const Val& buf_base, const Val& first, uint32_t count,
           const Val& rows, const Val& k, const Val& k0, uint32_t bk, uint32_t threads) {
  stage_chunks(src, tile, count * bk / kChunk, {tid(), threads}, first, rows, k, k0, [&](const Val& c) {
    Val r = c / (bk / kChunk), kc = c % (bk / kChunk) * kChunk;
    return ChunkPlace{r, kc, buf_base + r * (bk + kPad) + kc};
  });
}

// The same as core matrices (8 rows x 8 columns, 128 contiguous bytes; mtile/dsl_matrix.hpp) at
// tile[base ..]: chunk c is row c % 8 of core matrix c / 8, so the threads of a simdgroup write 512
// consecutive bytes, and read 64 bytes of each of 8 rows.
void stage_core_matrices(const Tensor& src, const TgArray& tile, const Val& base, const Val& first, uint32_t count,
                         const Val& rows, const Val& k, const Val& k0, uint32_t bk, uint32_t threads) {
  stage_chunks(src, tile, count * bk / kChunk, {tid(), threads}, first, rows, k, k0, [&](const Val& c) {
    return ChunkPlace{c / bk * 8u + c % 8u, c / 8u % (bk / kChunk) * kChunk, base + c * kChunk};
  });
}

// The same as swizzled 128-byte rows (bk = 64; mtile/dsl_matrix.hpp): chunk c is chunk c % 8 of row
// c / 8, stored at chunk (c % 8) ^ (row % 8) of its row: eight threads read a row's 128 bytes and
// write one 128-byte row of the tile.
void stage_swizzled_rows(const Tensor& src, const TgArray& tile, const Val& base, const Val& first, uint32_t count,
                         const Val& rows, const Val& k, const Val& k0, const Stagers& by, bool inside = false) {
  stage_chunks(
      src, tile, count * 8, by, first, rows, k, k0,
      [&](const Val& c) {
        Val r = c / 8u, kc = c % 8u * kChunk;
        return ChunkPlace{r, kc, base + swizzle128_index(r, kc).val};
      },
      inside);
}

// A 16 x 8 accumulator tile at (r, c) of out, finished: plus bias and activated, or plus residual.
MmaAcc finish_tile(const Tensor* extra, Extra kind, const Val& m, const Val& n, const Val* act, const Val& r,
                   const Val& c, MmaAcc v) {
  if (kind == Extra::Residual) {
    MmaAcc res = load_mma_acc(MatrixRef(*extra, n).bounded(m, n), r, c);
    for (uint32_t e = 0; e < mma_layout::kCElements; ++e) v.v[e] = v.v[e] + res.v[e];
    return v;
  }
  for (uint32_t e = 0; e < mma_layout::kCElements; ++e) {
    Val x = v.v[e];
    if (kind == Extra::Bias) {
      Val col = c + mma_layout::c_col(simd_lane(), e);
      x = x + load<f32>((*extra)[min(col, n - 1u)]);
    }
    Val silu = x * sigmoid(x), gelu = 0.5f * x * (1.0f + erf(x * float(M_SQRT1_2)));
    v.v[e] = select(*act == 1u, silu, select(*act == 2u, gelu, x));
  }
  return v;
}

// Stores a 16 x 8 accumulator tile at (r, c) of out, finished.
void store_tile(const Tensor* extra, Extra kind, const Tensor& out, const Val& m, const Val& n, const Val* act,
                const Val& r, const Val& c, MmaAcc v) {
  store_mma_acc(MatrixRef(out, n).bounded(m, n), r, c, finish_tile(extra, kind, m, n, act, r, c, v));
}

// Elements of the warpgroup bodies' threadgroup array: the staged buffers, and at least the tile of
// out that store_warpgroup_tile puts there (more than small buffers of bk 16 hold).
uint32_t warpgroup_tiles(uint32_t buffers, uint32_t bm, uint32_t bn) {
  return std::max(buffers, config("store_rows", 0) ? bm * (bn + 8) : 0u);
}

// The epilogue of the warpgroup bodies: stores the warpgroups' bm x bn tile of out at (row0,
// col0), finished. `store_rows` 0: each thread its fragments' elements, 2 bytes at a time, 8 rows
// a simdgroup store. 1: through `tiles` (free once every warpgroup's products are done): the
// fragments go to rows of bn + 8 elements (the 8 rows of a fragment store hit 32 distinct banks),
// then every thread of the threadgroup (`threads`) moves 16-byte chunks of whole rows to out, so a
// simdgroup writes 512 contiguous bytes of a row.
void store_warpgroup_tile(const Tensor* extra, Extra kind, const Tensor& out, const Val& m, const Val& n,
                          const Val* act, const TgArray& tiles, const Val& row0, const Val& col0, const Val& group_row,
                          const Val* producer, const WarpgroupAcc& d, uint32_t bm, uint32_t bn, uint32_t threads) {
  const Val r = group_row + simd_group() % 4u * 16u;
  // The warpgroups' threads: all but the producers (gemm_producer_body).
  auto consumers = [&](const std::function<void()>& f) { producer ? if_(!*producer, f) : f(); };
  if (!config("store_rows", 0)) {
    consumers([&] {
      for (uint32_t j = 0; j < bn / 8; ++j) store_tile(extra, kind, out, m, n, act, row0 + r, col0 + j * 8, d.tile(j));
    });
    return;
  }
  const uint32_t ld = bn + 8, chunks = bm * bn / kChunk;
  barrier();  // every warpgroup's mma_asyncs are done with the buffers
  consumers([&] {
    for (uint32_t j = 0; j < bn / 8; ++j) {
      MmaAcc v = finish_tile(extra, kind, m, n, act, row0 + r, col0 + j * 8, d.tile(j));
      for (uint32_t e = 0; e < mma_layout::kCElements; ++e)
        store(tiles[(r + mma_layout::c_row(simd_lane(), e)) * ld + (j * 8 + mma_layout::c_col(simd_lane(), e))],
              v.v[e].cast(out.elem));
    }
  });
  barrier();
  for (uint32_t c0 = 0; c0 < chunks; c0 += threads) {
    Val c = tid() + c0;
    auto body = [&] {
      Val tr = c / (bn / kChunk), tc = c % (bn / kChunk) * kChunk, row = row0 + tr, col = col0 + tc;
      std::vector<Val> v;
      for (uint32_t e = 0; e < kChunk; ++e) v.push_back(load(tiles[tr * ld + tc + e]));
      // Whole chunks store unmasked: 16 bytes at once where n is a multiple of 8 (vectorize_memory).
      if_(
          row < m && col + kChunk <= n,
          [&] {
            for (uint32_t e = 0; e < kChunk; ++e) store(out[row * n + col + e], v[e]);
          },
          [&] {
            for (uint32_t e = 0; e < kChunk; ++e) store(out[row * n + col + e], v[e], row < m && col + e < n);
          });
    };
    if (c0 + threads <= chunks)
      body();
    else
      if_(c < chunks, body);
  }
}

template <class T>
void gemm_warpgroup_body(const Tensor& a, const Tensor& w, const Tensor* extra, Extra kind, const Tensor& out,
                         const Val& m, const Val& n, const Val& k, const Val* act);
template <class T>
void gemm_producer_body(const Tensor& a, const Tensor& w, const Tensor* extra, Extra kind, const Tensor& out,
                        const Val& m, const Val& n, const Val& k, const Val* act);

template <class T>
void gemm_body(const Tensor& a, const Tensor& w, const Tensor* extra, Extra kind, const Tensor& out, const Val& m,
               const Val& n, const Val& k, const Val* act) {
  if (config("warpgroup", 0)) return gemm_warpgroup_body<T>(a, w, extra, kind, out, m, n, k, act);
  const uint32_t bm = config("bm", 128), bn = config("bn", 128), warps_m = config("warps_m", 2),
                 warps_n = config("warps_n", 4), bk = config("bk", 32), stages = config("stages", 2);
  const uint32_t threads = warps_m * warps_n * 32, tm = bm / warps_m / 16, tn = bn / warps_n / 8, ld = bk + kPad;
  TgArray a_tile = threadgroup_array(a.elem, stages * bm * ld), w_tile = threadgroup_array(w.elem, stages * bn * ld);
  Val row0 = named("row0", program_id(1) * bm), col0 = named("col0", program_id(0) * bn);
  Val warp_row = named("warp_row", simd_group() / warps_n * (bm / warps_m));
  Val warp_col = named("warp_col", simd_group() % warps_n * (bn / warps_n));
  auto fill = [&](const Val& step) {
    Val buf = step % stages, k0 = step * bk;
    stage(a, a_tile, buf * (bm * ld), row0, bm, m, k, k0, bk, threads);
    stage(w, w_tile, buf * (bn * ld), col0, bn, n, k, k0, bk, threads);
  };
  std::vector<std::unique_ptr<MmaAccVar>> acc;
  for (uint32_t i = 0; i < tm * tn; ++i) acc.push_back(std::make_unique<MmaAccVar>(mma_zero()));
  Val steps = named("steps", (k + (bk - 1)) / bk);
  // One group is committed per step, empty past the last, so that waiting until at most
  // stages - 2 are pending always leaves this step's buffer complete.
  for (uint32_t s = 0; s + 1 < stages; ++s) {
    if_(lit(s) < steps, [&] { fill(lit(s)); });
    copy_async_commit();
  }
  for_(0u, steps, 1u, [&](Val step) {
    copy_async_wait(stages - 2);
    // Every thread's copies for this step have landed, and every simdgroup is done with the
    // step before, whose buffer the fill below overwrites.
    barrier();
    if_(step + (stages - 1) < steps, [&] { fill(step + (stages - 1)); });
    copy_async_commit();
    Val buf = step % stages;
    // Rows of ld = bk + 8 elements (a multiple of 8) from buffers of bm * ld and bn * ld: every
    // row a fragment reads starts 16-byte aligned, so the loaders read 8 x 8 matrices (ldmatrix).
    MatrixRef at = MatrixRef(a_tile, ld, buf * (bm * ld)).aligned_rows();
    MatrixRef wt = MatrixRef(w_tile, ld, buf * (bn * ld)).aligned_rows();
    // The fragments of the next 16 columns of K are loaded before this one's products, so that
    // their loads are in flight while the tensor cores work (registers for two sets).
    struct Fragments {
      std::vector<MmaA> a;
      std::vector<MmaB> b;
    };
    auto load_fragments = [&](uint32_t kk) {
      Fragments f;
      for (uint32_t j = 0; j + 1 < tn; j += 2)
        for (const MmaB& b : load_mma_b_nk_x2(wt, warp_col + j * 8, kk)) f.b.push_back(b);
      if (tn % 2) f.b.push_back(load_mma_b_nk(wt, warp_col + (tn - 1) * 8, kk));
      for (uint32_t i = 0; i < tm; ++i) f.a.push_back(load_mma_a(at, warp_row + i * 16, kk));
      return f;
    };
    Fragments cur = load_fragments(0);
    for (uint32_t kk = 0; kk < bk; kk += 16) {
      Fragments next;
      if (kk + 16 < bk) next = load_fragments(kk + 16);
      for (uint32_t i = 0; i < tm; ++i)
        for (uint32_t j = 0; j < tn; ++j) *acc[i * tn + j] = mma(cur.a[i], cur.b[j], *acc[i * tn + j]);
      cur = std::move(next);
    }
  });
  for (uint32_t i = 0; i < tm; ++i)
    for (uint32_t j = 0; j < tn; ++j)
      store_tile(extra, kind, out, m, n, act, row0 + warp_row + i * 16, col0 + warp_col + j * 8,
                 acc[i * tn + j]->get());
}

// gemm on warpgroup MMA (targets with async_mma): each of bm / 64 warpgroups computes 64 rows x bn
// of the tile with one mma_async per 16 columns of K, A and W staged in one array of `stages`
// buffers as swizzled 128-byte rows (`swizzle` 128, bk 64) or plain core matrices (0: rows
// outermost, so that each thread's 16-byte copy lands next to its neighbour's; bank conflicts
// make it slower). A step leaves `pending` (0 or 1) groups of its mma_asyncs in flight: the fill
// after a barrier may overwrite only a buffer whose products every warpgroup has waited for, so
// the fills run stages - 1 - pending steps ahead.
template <class T>
void gemm_warpgroup_body(const Tensor& a, const Tensor& w, const Tensor* extra, Extra kind, const Tensor& out,
                         const Val& m, const Val& n, const Val& k, const Val* act) {
  const uint32_t bm = config("bm", 128), bn = config("bn", 256), bk = config("bk", 64), stages = config("stages", 4),
                 pending = config("pending", 0), swizzle = config("swizzle", 128);
  if (config("producers", 0)) return gemm_producer_body<T>(a, w, extra, kind, out, m, n, k, act);
  const uint32_t threads = bm / 64 * 128, step_elems = (bm + bn) * bk, ahead = stages - 1 - pending;
  TgArray tiles = threadgroup_array(a.elem, warpgroup_tiles(stages * step_elems, bm, bn));
  Val row0 = named("row0", program_id(1) * bm), col0 = named("col0", program_id(0) * bn);
  Val group_row = named("group_row", simd_group() / 4u * 64u);
  auto fill = [&](const Val& step) {
    Val base = step % stages * step_elems, k0 = step * bk;
    if (swizzle) {
      stage_swizzled_rows(a, tiles, base, row0, bm, m, k, k0, {tid(), threads});
      stage_swizzled_rows(w, tiles, base + bm * bk, col0, bn, n, k, k0, {tid(), threads});
    } else {
      stage_core_matrices(a, tiles, base, row0, bm, m, k, k0, bk, threads);
      stage_core_matrices(w, tiles, base + bm * bk, col0, bn, n, k, k0, bk, threads);
    }
  };
  WarpgroupAccVar acc(warpgroup_acc_zero(bn));
  Val steps = named("steps", (k + (bk - 1)) / bk);
  for (uint32_t s = 0; s < ahead; ++s) {
    if_(lit(s) < steps, [&] { fill(lit(s)); });
    copy_async_commit();
  }
  for_(0u, steps, 1u, [&](Val step) {
    copy_async_wait(ahead - 1);
    mma_fence();  // this thread's copies, now landed, are seen by the mma_asyncs after the barrier
    barrier();
    Val base = step % stages * step_elems;
    WarpgroupAcc d = acc.get();
    for (uint32_t kk = 0; kk < bk; kk += 16)
      d = swizzle
              ? mma_async(tiles, swizzle128_rows(base, group_row, kk), swizzle128_rows(base + bm * bk, 0u, kk), d)
              : mma_async(tiles, core_matrices(base, group_row, kk, bk), core_matrices(base + bm * bk, 0u, kk, bk), d);
    // The products run while this thread issues the next copies.
    if_(step + ahead < steps, [&] { fill(step + ahead); });
    copy_async_commit();
    acc = mma_wait(pending, d);
  });
  WarpgroupAcc d = pending ? mma_wait(0, acc.get()) : acc.get();
  store_warpgroup_tile(extra, kind, out, m, n, act, tiles, row0, col0, group_row, nullptr, d, bm, bn, threads);
}

// The warpgroup body with `producers` warps of its own that fill the buffers (warp
// specialization), in swizzled rows: a producer waits until a buffer is released (mbarrier
// `empty`), copies a step into it and arrives on `full` once its copies land; the warpgroups wait
// on `full`, multiply, and release the buffer once its products are done (`pending` steps later).
// No barrier in the loop, and the warpgroups issue no copies. Both roles sit in one loop over the
// steps, the producers' fill of a step before the warpgroups' use of it, which is the order the
// CPU engine runs them in (docs/IR.md "Mbarriers"); on a GPU the producers run up to `stages`
// steps ahead. With `tma` the first producer thread alone fills a step: two copy_tiles (docs/IR.md
// "Tile copies") whose bytes complete `full`, edges as zeros.
template <class T>
void gemm_producer_body(const Tensor& a, const Tensor& w, const Tensor* extra, Extra kind, const Tensor& out,
                        const Val& m, const Val& n, const Val& k, const Val* act) {
  const uint32_t bm = config("bm", 128), bn = config("bn", 256), bk = config("bk", 64), stages = config("stages", 4),
                 pending = config("pending", 1), producers = config("producers", 1), tma = config("tma", 0);
  const uint32_t consumer_warps = bm / 16, step_elems = (bm + bn) * bk;
  TgArray tiles = threadgroup_array(a.elem, warpgroup_tiles(stages * step_elems, bm, bn));
  Mbarriers full = mbarriers(stages), empty = mbarriers(stages);
  Val row0 = named("row0", program_id(1) * bm), col0 = named("col0", program_id(0) * bn);
  Val producer = named("producer", simd_group() >= consumer_warps);
  if_(tid() == 0u, [&] {
    for (uint32_t s = 0; s < stages; ++s) {
      // Every producer thread once its copies land, or with `tma` the one that issues the tiles.
      full.init(s, tma ? 1u : producers * 32);
      empty.init(s, consumer_warps);  // the first thread of each consumer simdgroup
    }
  });
  // tma: a step's two tiles are two copy_tiles of swizzled 128-byte rows (K 64 wide) by the first
  // producer thread; rows past M or N and columns past K arrive as zeros.
  const TileView a_view{a, {k, m}, {k}, {bk, bm}, 128}, w_view{w, {k, n}, {k}, {bk, bn}, 128};
  auto fill_tiles = [&](const Val& step, const Val& s) {
    Val base = s * step_elems, k0 = (step * bk).cast(ScalarType::i32);
    full.arrive_expect(s, static_cast<uint32_t>(step_elems * storage_bytes(a.elem)));
    copy_tile(tiles[base], a_view, {k0, row0.cast(ScalarType::i32)}, full, s);
    copy_tile(tiles[base + bm * bk], w_view, {k0, col0.cast(ScalarType::i32)}, full, s);
  };
  barrier();
  const Stagers by{tid() - consumer_warps * 32, producers * 32};
  auto fill = [&](const Val& step, bool inside) {
    Val base = step % stages * step_elems, k0 = step * bk;
    stage_swizzled_rows(a, tiles, base, row0, bm, m, k, k0, by, inside);
    stage_swizzled_rows(w, tiles, base + bm * bk, col0, bn, n, k, k0, by, inside);
  };
  WarpgroupAccVar acc(warpgroup_acc_zero(bn));
  Val steps = named("steps", (k + (bk - 1)) / bk);
  Val group_row = named("group_row", simd_group() / 4u * 64u);
  for_(0u, steps, 1u, [&](Val step) {
    Val s = step % stages, round = step / stages;
    if_(
        producer,
        [&] {
          if (tma)
            return if_(tid() == consumer_warps * 32u, [&] {
              empty.wait(s, (round & 1u) ^ 1u);
              fill_tiles(step, s);
            });
          empty.wait(s, (round & 1u) ^ 1u);  // the first round's buffers are free
          // Whole tiles (all but the edges) copy with no bounds on rows or K.
          if_((step + 1u) * bk <= k && row0 + bm <= m && col0 + bn <= n, [&] { fill(step, true); },
              [&] {
                fill(step, false);
                mma_fence();  // the zeros stored past K reach the warpgroups' mma_asyncs
              });
          full.arrive_after_copies(s);
        },
        [&] {
          full.wait(s, round & 1u);
          mma_fence();
          Val base = s * step_elems;
          WarpgroupAcc d = acc.get();
          for (uint32_t kk = 0; kk < bk; kk += 16)
            d = mma_async(tiles, swizzle128_rows(base, group_row, kk), swizzle128_rows(base + bm * bk, 0u, kk), d);
          acc = mma_wait(pending, d);
          // The products of step - pending are done: its buffer goes back to the producers.
          if_(step >= pending && simd_lane() == 0u, [&] { empty.arrive((step - pending) % stages); });
        });
  });
  if (pending) if_(!producer, [&] { acc = mma_wait(0, acc.get()); });
  store_warpgroup_tile(extra, kind, out, m, n, act, tiles, row0, col0, group_row, &producer, acc.get(), bm, bn,
                       (consumer_warps + producers) * 32);
}

template <class T>
void gemm(In<T> a, In<T> w, Out<T> out, Constexpr m, Constexpr n, Constexpr k, Constexpr act) {
  gemm_body<T>(a, w, nullptr, Extra::None, out, m, n, k, &act);
}
template <class T>
void gemm_bias(In<T> a, In<T> w, In<T> bias, Out<T> out, Constexpr m, Constexpr n, Constexpr k, Constexpr act) {
  gemm_body<T>(a, w, &bias, Extra::Bias, out, m, n, k, &act);
}
template <class T>
void gemm_residual(In<T> a, In<T> w, In<T> residual, Out<T> out, Constexpr m, Constexpr n, Constexpr k) {
  gemm_body<T>(a, w, &residual, Extra::Residual, out, m, n, k, nullptr);
}

double activate(double x, uint32_t act) {
  if (act == 1) return x / (1 + std::exp(-x));
  if (act == 2) return 0.5 * x * (1 + std::erf(x * M_SQRT1_2));
  return x;
}

KernelSpec gemm_spec_for(KernelDef def, Extra kind) {
  KernelSpec k;
  k.def = std::move(def);
  k.family = "matrix";
  using rule::var;
  rule::Expr m = var("m"), n = var("n"), kk = var("k");
  k.dims = {"m", "n", "k"};
  if (kind != Extra::Residual) k.dims.push_back("act");
  // Tiles from M: a short M takes a short tile and 32 columns (more threadgroups), which then wait
  // on memory: up to 8 buffers of K in flight. Past m = 64, 128 columns (64 where two buffers of
  // 128 x 128 would not fit, as in Apple's 32 KiB) and up to 3 buffers. K 64 at a time where three
  // buffers of it fit (2 bytes an element). 2026-11-26 sweeps on the H100, bench/NOTES.md.
  // Where the target has warpgroup MMA (async_mma: sm_90a, the CPU engine), M past 64 takes it:
  // two warpgroups of 64 rows, K 64 at a time in swizzled 128-byte rows, 256 columns where four
  // buffers fit (the H100) and 128 would take more than a wave of threadgroups, else 128 (m 512,
  // n 4096: 70.0 -> 54.8 us; m 1024, two waves of 128: 76.7 against 99.3; 2026-11-27 sweep).
  rule::Expr shared = var("shared_memory"), bm = var("bm"), bn = var("bn"), bk = var("bk"), wg = var("warpgroup");
  k.config = {
      {"warpgroup", rule::select(m > 64, var("async_mma"), 0)},
      {"swizzle", rule::select(wg == 1, 128, 0)},
      {"bm", rule::clamp(rule::pow2_ceil(m), 16, 128)},
      {"bn",
       rule::select(m > 64,
                    rule::select(wg == 1,
                                 rule::select(shared >= 4 * (128 + 256) * 64 * 2 &&
                                                  rule::ceil_div(m, 128) * rule::ceil_div(n, 128) > var("sm_count"),
                                              256, 128),
                                 rule::select(shared >= 2 * 256 * 40 * 2, 128, 64)),
                    32)},
      {"warps_m", rule::select(wg == 1, bm / 16, rule::min(bm / 16, 2))},
      {"warps_n", rule::select(wg == 1, 1, 4)},
      {"bk", rule::select(wg == 1 || shared >= (bm + bn) * 72 * 2 * 3, 64, 32)},
      // The warpgroup body's copies as tile copies (TMA) by one producer thread, where the target
      // has them and two buffers fit beside the mbarriers (kTileBarrierBytes): 4096^3 236.5 ->
      // 191.8 us, 1024 x 4096 x 4096 62.1 -> 49.1, 512 x 4096 x 4096 40.6 -> 31.9 on the H200
      // (twenty-second session, bench/NOTES.md). Not on the CPU engine's 64 KiB at 128 x 128.
      {"tma", rule::select(wg == 1 && var("tile_copy") == 1 && var("swizzle") == 128 &&
                               shared >= 2 * (bm + bn) * bk * 2 + kTileBarrierBytes,
                           1, 0)},
      {"stages",
       rule::select(wg == 1, rule::clamp((shared - var("tma") * kTileBarrierBytes) / ((bm + bn) * bk * 2), 2, 4),
                    rule::clamp(shared / ((bm + bn) * (bk + 8) * 2), 2, rule::select(m > 64, 3, 8)))},
      // One group of products in flight past a step where the fills still run two steps ahead.
      // Not with tile copies: a step's products waited for at once give its buffer back to the
      // TMA a step sooner (4096^3 204.6 -> 191.8 us, 512 x 4096 x 4096 36.4 -> 31.9).
      {"pending", rule::select(wg == 1 && var("stages") >= 4 && var("tma") == 0, 1, 0)},
      // Warps of the threadgroup that only fill the buffers (gemm_producer_body); 0: every warp
      // copies and multiplies. A warpgroup of them where tiles of 128 columns make one wave and
      // four buffers fit (m 256 / 512 x 4096 x 4096: 51.7 -> 47.7, 54.4 -> 51.2 us); not past a
      // wave, where the copies' issue is not what the warpgroups wait for (m 1024: 76.3 -> 79.1,
      // 4096 x 4096 x 2048: 177.3 -> 183.8). Eighth session's sweeps (2026-11-27), bench/NOTES.md.
      // With tile copies, one warp whose first thread issues them.
      {"producers",
       rule::select(var("tma") == 1, 1, rule::select(var("swizzle") == 128 && bn == 128 && var("stages") >= 4, 4, 0))},
      // The warpgroup bodies' tile goes to out as 16-byte chunks of rows through threadgroup memory.
      {"store_rows", rule::select(wg == 1, 1, 0)}};
  rule::Expr warps = var("warps_m") * var("warps_n") + var("producers");
  k.dispatch = {.grid = rule::ceil_div(n, var("bn")), .grid_y = rule::ceil_div(m, var("bm")), .tpg = warps * 32};
  k.preconditions = {
      m >= 1,
      n >= 1,
      kk >= 8,
      kk % 8 == 0,
      var("simd_width") == 32,
      var("bm") % (var("warps_m") * 16) == 0,
      var("bn") % (var("warps_n") * 8) == 0,
      var("bk") >= 16,
      var("bk") % 16 == 0,
      var("stages") >= 2,
      var("stages") <= 8,
      var("tpg") == warps * 32,
      var("grid") == rule::ceil_div(n, var("bn")),
      var("grid_y") == rule::ceil_div(m, var("bm")),
      var("grid_z") == 1,
      wg <= 1,
      // 64 rows a warpgroup (4 simdgroups), one mma_async of n = bn per 16 of K.
      wg == 0 ||
          (var("async_mma") == 1 && bm % 64 == 0 && var("warps_m") == bm / 16 && var("warps_n") == 1 && bn <= 256),
      // Products left in flight a step: the fills run stages - 1 - pending ahead.
      var("pending") <= 1,
      var("stages") >= 2 + var("pending"),
      // Swizzled rows are 64 elements of K (128 bytes).
      var("swizzle") == 0 || (wg == 1 && var("swizzle") == 128 && bk == 64),
      // Producer warps fill swizzled rows for the warpgroups; 1, 2 or 4 of them.
      var("producers") == 0 ||
          (var("swizzle") == 128 && (var("producers") == 1 || var("producers") == 2 || var("producers") == 4)),
      // Tile copies are issued by the first producer thread, where the target has them.
      var("tma") == 0 || (var("tma") == 1 && var("producers") >= 1 && var("tile_copy") == 1 && var("swizzle") == 128),
      var("store_rows") == 0 || (wg == 1 && var("store_rows") == 1),
  };
  k.sizes = {{"a", m * kk}, {"w", n * kk}, {"out", m * n}};
  if (kind == Extra::Bias) k.sizes["bias"] = n;
  if (kind == Extra::Residual) k.sizes["residual"] = m * n;
  k.flops = m * n * kk * 2;
  if (kind != Extra::Residual) k.preconditions.push_back(var("act") <= 2);
  k.reference = [kind](const Shape& s, HostTensors& t) {
    uint64_t m = dim(s, "m"), n = dim(s, "n");
    uint64_t act = kind == Extra::Residual ? 0 : dim(s, "act");
    auto& out = t["out"];
    linear_reference(t["a"], t["w"], out, m, n, dim(s, "k"));
    for (uint64_t i = 0; i < m; ++i)
      for (uint64_t j = 0; j < n; ++j) {
        double& v = out[i * n + j];
        if (kind == Extra::Bias) v += t["bias"][j];
        v = kind == Extra::Residual ? v + t["residual"][i * n + j] : activate(v, act);
      }
  };

  k.tolerance = matrix_tolerances();
  k.example_shape = {{"m", 64}, {"n", 256}, {"k", 512}};
  k.test_shapes = {{{"m", 1}, {"n", 8}, {"k", 8}},
                   {{"m", 17}, {"n", 33}, {"k", 40}},
                   {{"m", 130}, {"n", 70}, {"k", 64}},
                   {{"m", 64}, {"n", 256}, {"k", 1000}},
                   {{"m", 5}, {"n", 129}, {"k", 24}}};
  // mtile bench checks each case against the float64 reference on the host first: shapes whose
  // product takes seconds there. bench/peers_matrix.py times 4096^3 and 8192 x 4096 x 14336
  // against cuBLAS (checked on the GPU).
  k.bench_shapes = {{{"m", 16}, {"n", 4096}, {"k", 4096}}, {{"m", 512}, {"n", 4096}, {"k", 4096}}};
  if (kind != Extra::Residual) {  // each activation in the tests; none where timed
    for (size_t i = 0; i < k.test_shapes.size(); ++i) k.test_shapes[i]["act"] = uint32_t(i % 3);
    k.example_shape["act"] = 0;
    for (Shape& s : k.bench_shapes) s["act"] = 0;
  }
  return k;
}

}  // namespace

KernelSpec gemm_spec() {
  KernelSpec k = gemm_spec_for(define_half_kernel("gemm", ir::Mode::Elementwise,
                                                  {"a", "w", "out", "m", "n", "k", "act"}, MTILE_HALF_VARIANTS(gemm)),
                               Extra::None);
  k.summary = "out = act(a @ w.T): a m x k, w n x k (a torch Linear weight), tensor-core MMA, f32 accumulation";
  return k;
}

KernelSpec gemm_bias_spec() {
  KernelSpec k =
      gemm_spec_for(define_half_kernel("gemm_bias", ir::Mode::Elementwise,
                                       {"a", "w", "bias", "out", "m", "n", "k", "act"}, MTILE_HALF_VARIANTS(gemm_bias)),
                    Extra::Bias);
  k.summary = "out = act(a @ w.T + bias), tensor-core MMA, f32 accumulation";
  return k;
}

KernelSpec gemm_residual_spec() {
  KernelSpec k = gemm_spec_for(
      define_half_kernel("gemm_residual", ir::Mode::Elementwise, {"a", "w", "residual", "out", "m", "n", "k"},
                         MTILE_HALF_VARIANTS(gemm_residual)),
      Extra::Residual);
  k.summary = "out = a @ w.T + residual, tensor-core MMA, f32 accumulation";
  return k;
}

}  // namespace mtile::lib
