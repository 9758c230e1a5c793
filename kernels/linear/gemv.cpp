// gemv: out[r, j] = sum_i x[r, i] * w[j, i] for the m <= 8 rows of a decode batch, w = [n, k]
// row-major (a torch Linear weight), accumulated in f32 and rounded once to T. Memory-bound: w is
// read exactly once for all m rows.
// Each simdgroup takes `cols` consecutive output columns j, i.e. rows of w. Its 32 lanes stream
// those rows in 16-byte loads (lane l takes the elements 8l .. 8l + 7 of every 256), multiply
// them with the same 8 elements of each row of x (m * k elements: they stay in L1 and L2) and keep
// m * cols partial sums, which simd_sum reduces at the end. A loop trip takes `unroll` chunks of
// 256 elements, their loads first, so that more of w is in flight; the k % (256 * unroll) elements
// after the last whole trip take a second loop of one chunk a trip. With `ksplit` > 1, that many
// simdgroups of a threadgroup share one group of columns, each taking every ksplit-th chunk, and
// their simd_sums are added through threadgroup memory after a barrier. A column past n (in the last
// simdgroup when n is not a multiple of the columns a threadgroup takes) reads row n - 1 again and
// stores nothing, so every access is in bounds and no simd_sum sits under divergent control flow.
#include <deque>
#include <type_traits>

#include "kernels/linear/linear.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"
#include "kernels/tile_ring.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kChunk = 8;                   // elements a lane loads at once: 16 bytes of bf16
constexpr uint32_t kSpan = kChunk * kSimdLanes;  // elements of a row a simdgroup loads at once
constexpr uint32_t kMaxRows = 8;                 // the decode batch: m <= 8

constexpr uint32_t kMmaCols = 16;   // output columns (rows of w) a group of simdgroups takes: mma's m
constexpr uint32_t kMmaChunk = 32;  // elements of k a simdgroup takes at once: two mmas' k

// gemv on tensor cores (Config mma 1; bf16 and f16): a group of ksplit simdgroups (the
// threadgroup) takes 16 output columns; their rows of w are mma's A (16 x 16: a row of w a row of
// A) and the rows of x B's 8 columns (those past m repeat row m - 1 and are never stored). The sum
// over k may run in any order, so the four k-slots of A and B that a lane holds in one mma
// (2t, 2t + 1, 2t + 8, 2t + 9 for lane 4g + t; mtile/mma_layout.hpp) stand for four consecutive
// elements of k: lane (g, t) loads 16 bytes of w's rows g and g + 8 and of x's row g at elements
// 8t .. 8t + 7 of a 32-element chunk, and the halves feed two mmas. A simdgroup's load of w then
// reads 64 contiguous bytes of each of 8 rows, and the products cost two mmas where the FMA body
// takes 8 m FMAs a lane for each 16 bytes of w. Simdgroup `part` takes chunks part, part + ksplit,
// ...; the parts' accumulators are added through threadgroup memory. Chunks past the last whole
// trip of `unroll` chunks clamp their loads into k and zero the pieces past it.
template <class T>
void gemv_mma(const Tensor& x, const Tensor& w, const Tensor& out, const Val& n, const Val& k) {
  const uint32_t rows = config("m_rows"), parts = config("ksplit"), unroll = config("unroll");
  const uint32_t stride = kMmaChunk * parts;
  Val g = simd_lane() / 4u, piece = named("piece", simd_lane() % 4u * kChunk);
  Val j0 = named("j0", program_id(0) * kMmaCols);
  Val w_lo = named("w_lo", min(j0 + g, n - 1u) * k), w_hi = named("w_hi", min(j0 + g + 8u, n - 1u) * k);
  Val x_row = named("x_row", min(g, lit(rows - 1)) * k);
  MmaAccVar acc(mma_zero());
  auto chunks = [&](const Val& i, uint32_t count, bool clamped) {
    struct Loads {
      Vec lo, hi, x;
    };
    std::vector<Loads> loads;
    for (uint32_t u = 0; u < count; ++u) {
      Val at = i + u * stride + piece;
      Val inside = at < k;
      if (clamped) at = min(at, k - kChunk);
      Loads l{load_n<kChunk>(w, w_lo + at), load_n<kChunk>(w, w_hi + at), load_n<kChunk>(x, x_row + at)};
      if (clamped)
        for (Vec* v : {&l.lo, &l.hi, &l.x})
          for (Val& e : v->lanes) e = select(inside, e, lit(w.elem, 0.0));
      loads.push_back(std::move(l));
    }
    for (const Loads& l : loads)
      for (uint32_t h = 0; h < 2; ++h) {
        const uint32_t e = 4 * h;
        MmaA a{{l.lo[e], l.lo[e + 1], l.hi[e], l.hi[e + 1], l.lo[e + 2], l.lo[e + 3], l.hi[e + 2], l.hi[e + 3]}};
        MmaB b{{l.x[e], l.x[e + 1], l.x[e + 2], l.x[e + 3]}};
        acc = mma(a, b, acc);
      }
  };
  Val start = named("start", simd_group() * kMmaChunk);
  Val whole = named("whole", k / (stride * unroll) * (stride * unroll));  // elements the unrolled loop takes
  for_(start, whole, stride * unroll, [&](Val i) { chunks(i, unroll, false); });
  for_(whole + start, k, stride, [&](Val i) { chunks(i, 1, true); });

  // Accumulator element e of lane (g, t): column j0 + g + 8 (e / 2) of out, row 2t + e % 2 of x.
  auto store_sum = [&](const Val& lane, const Val& e, const Val& total) {
    Val r = lane % 4u * 2u + e % 2u, j = j0 + lane / 4u + e / 2u * 8u;
    if_(r < rows && j < n, [&] { store(out[r * n + j], cast<T>(total)); });
  };
  MmaAcc d = acc.get();
  if (parts == 1) {
    for (uint32_t e = 0; e < mma_layout::kCElements; ++e) store_sum(simd_lane(), lit(e), d.v[e]);
    return;
  }
  // The parts' accumulators through threadgroup memory, [part][e * 32 + lane]; then thread `item`
  // adds the parts of one accumulator element, in order.
  constexpr uint32_t sums = kSimdLanes * mma_layout::kCElements;
  const uint32_t threads = parts * kSimdLanes;
  TgArray partial = threadgroup_array<f32>(parts * sums);
  for (uint32_t e = 0; e < mma_layout::kCElements; ++e)
    store(partial[simd_group() * sums + e * kSimdLanes + simd_lane()], d.v[e]);
  barrier();
  for (uint32_t i0 = 0; i0 < sums; i0 += threads) {
    Val item = tid() + i0;
    auto add = [&] {
      Val total = load(partial[item]);
      for (uint32_t p = 1; p < parts; ++p) total = total + load(partial[item + p * sums]);
      store_sum(item % kSimdLanes, item / kSimdLanes, total);
    };
    if (i0 + threads <= sums)
      add();
    else
      if_(item < sums, add);
  }
}

// gemv on tensor cores with w and x by tile copies (Config tma 1 with mma 1; targets with tile
// copies): the threadgroup's ksplit simdgroups take 16 output columns as gemv_mma's do, and w's 16
// rows and x's rows stream through `stages` buffers that thread 0 fills, a step of ksplit blocks of
// 64 elements of k, each block a box of w (16 x 64) and one of x (8 x 64) in swizzled rows:
// elements past k, rows of w past n and rows of x past m arrive as zeros, so nothing is bounded.
// Simdgroup s multiplies block s of each step (four mmas: w's rows as A, x's rows as B's columns)
// and every thread arrives on the buffer's `empty` mbarrier after it; thread 0 waits on that before
// refilling it. The simdgroups' accumulators are added through threadgroup memory.
template <class T>
void gemv_tiles(const Tensor& x, const Tensor& w, const Tensor& out, const Val& n, const Val& k) {
  const uint32_t rows = config("m_rows"), parts = config("ksplit"), stages = config("stages");
  const uint32_t threads = parts * kSimdLanes, w_box = kMmaCols * 64, x_box = 8 * 64;
  const uint32_t step_elems = parts * (w_box + x_box);
  TgArray tiles = threadgroup_array(w.elem, stages * step_elems);
  Val j0 = named("j0", program_id(0) * kMmaCols);
  const TileView w_view{w, {k, n}, {k}, {64, kMmaCols}, 128}, x_view{x, {k, lit(rows)}, {k}, {64, 8}, 128};
  Val steps = named("steps", (k + (parts * 64 - 1)) / (parts * 64));
  // With `rotate`, column group g takes its steps from step g % steps on, wrapping around.
  Val first = config("rotate", 0) ? named("first_step", program_id(0) % steps) : lit(0u);
  // Step i: w's blocks first, then x's.
  auto copies = [&](const Val& i, const Val& b, const Mbarriers& full) {
    Val at = b * step_elems, step = config("rotate", 0) ? (i + first) % steps : i;
    for (uint32_t s = 0; s < parts; ++s) {
      Val k0 = ((step * parts + s) * 64u).cast(ScalarType::i32);
      copy_tile(tiles[at + s * w_box], w_view, {k0, j0.cast(ScalarType::i32)}, full, b);
      copy_tile(tiles[at + parts * w_box + s * x_box], x_view, {k0, lit(0)}, full, b);
    }
  };
  MmaAccVar acc(mma_zero());
  auto body = [&](const Val&, const Val& b) {
    Val at = named("buf_at", b * step_elems);
    MatrixRef wt = MatrixRef(tiles, 64u, at + simd_group() * w_box).swizzled128(w_box);
    MatrixRef xt = MatrixRef(tiles, 64u, at + parts * w_box + simd_group() * x_box).swizzled128(x_box);
    MmaAcc d = acc.get();
    for (uint32_t kk = 0; kk < 64; kk += 16) d = mma(load_mma_a(wt, 0u, kk), load_mma_b_nk(xt, 0u, kk), d);
    acc = d;
  };
  TileRing{stages, threads, step_elems * static_cast<uint32_t>(storage_bytes(w.elem)), copies, body}.run(steps);
  // The simdgroups' accumulators through threadgroup memory, [part][e * 32 + lane]; thread `item`
  // adds the parts of one element: column j0 + g + 8 (e / 2) of out, row 2t + e % 2 of x.
  constexpr uint32_t sums = kSimdLanes * mma_layout::kCElements;
  TgArray partial = threadgroup_array<f32>(parts * sums);
  MmaAcc d = acc.get();
  for (uint32_t e = 0; e < mma_layout::kCElements; ++e)
    store(partial[simd_group() * sums + e * kSimdLanes + simd_lane()], d.v[e]);
  barrier();
  for_(tid(), lit(sums), lit(threads), [&](Val item) {
    Val total = load(partial[item]);
    for (uint32_t p = 1; p < parts; ++p) total = total + load(partial[item + p * sums]);
    Val lane = item % kSimdLanes, e = item / kSimdLanes;
    Val r = lane % 4u * 2u + e % 2u, j = j0 + lane / 4u + e / 2u * 8u;
    if_(r < rows && j < n, [&] { store(out[r * n + j], cast<T>(total)); });
  });
}

template <class T>
void gemv(In<T> x, In<T> w, Out<T> out, Constexpr n, Constexpr k) {
  if (config("mma", 0)) {
    if constexpr (std::is_same_v<T, f32>)
      detail::trace_error("Config mma 1 multiplies bf16 or f16 on tensor cores; f32 takes mma 0");
    else
      return config("tma", 0) ? gemv_tiles<T>(x, w, out, n, k) : gemv_mma<T>(x, w, out, n, k);
  }
  // Trace-time sizes: the rows of x (m: the sums are unrolled per row; the contract checks it), the
  // columns of a simdgroup, the chunks a loop trip takes, the simdgroups that share columns.
  const uint32_t rows = config("m_rows"), cols = config("cols"), unroll = config("unroll"),
                 ksplit = config("ksplit", 1), simdgroups = config("threads") / kSimdLanes;
  // Simdgroup `part` of a group of ksplit takes the chunks part, part + ksplit, ... of its columns.
  Val group = ksplit == 1 ? program_id(0) * simdgroups + simd_group()
                          : program_id(0) * (simdgroups / ksplit) + simd_group() / ksplit;
  Val part = ksplit == 1 ? lit(0u) : named("part", simd_group() % ksplit);
  Val first = named("first_col", cols == 1 ? group : group * cols);
  std::vector<Val> w_row;  // the start of each column's row of w: j * k, j clamped to n - 1
  for (uint32_t c = 0; c < cols; ++c) w_row.push_back(named("w_row", min(column(first, c), n - 1u) * k));
  auto x_at = [&](uint32_t r, const Val& i) { return r == 0 ? i : k * r + i; };  // x[r, i]
  std::deque<Var> acc;  // acc[r * cols + c]: row r of x times column c
  for (uint32_t i = 0; i < rows * cols; ++i) acc.emplace_back("acc", lit(0.0f));

  // The chunks at i, i + stride, ..., i + (count - 1) * stride: loads of w and x first, then the sums.
  const uint32_t stride = kSpan * ksplit;
  auto chunks = [&](const Val& i, uint32_t count) {
    std::vector<Vec> wv, xv;  // [u * cols + c], [u * rows + r]
    for (uint32_t u = 0; u < count; ++u) {
      Val at = column(i, u * stride);
      for (uint32_t c = 0; c < cols; ++c) wv.push_back(load_n<kChunk, f32>(w, w_row[c] + at));
      for (uint32_t r = 0; r < rows; ++r) xv.push_back(load_n<kChunk, f32>(x, x_at(r, at)));
    }
    for (uint32_t u = 0; u < count; ++u)
      for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t c = 0; c < cols; ++c) {
          Var& a = acc[r * cols + c];
          Val s = a;
          for (uint32_t e = 0; e < kChunk; ++e) s = fma(xv[u * rows + r][e], wv[u * cols + c][e], s);
          a = s;
        }
  };
  Val start = ksplit == 1 ? simd_lane() * kChunk : named("start", part * kSpan + simd_lane() * kChunk);
  Val whole = named("whole", k / (stride * unroll) * (stride * unroll));  // elements the unrolled loop takes
  // With `rotate`, column group g starts at trip g % trips of its rows and wraps around, so that
  // the simdgroups in flight together read their rows at different offsets (the partial last trip
  // stays last).
  const bool rotate = config("rotate", 0) != 0;
  const uint32_t trip = stride * unroll;
  Val shift = rotate ? named("rotation", group % max(whole / trip, lit(1u)) * trip) : lit(0u);
  auto rotated = [&](const Val& i) {
    Val at = i + shift;
    return select(at >= whole, at - whole, at);
  };
  const bool split = unroll > 1 || rotate;  // the whole trips, then one chunk a trip
  if (split) for_(start, whole, trip, [&](Val i) { chunks(rotate ? rotated(i) : i, unroll); });
  for_(split ? whole + start : start, k, stride, [&](Val i) { chunks(i, 1); });

  if (ksplit == 1) {
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) {
        Val total = simd_sum(acc[r * cols + c].get());
        Val j = column(first, c);
        if_(simd_lane() == 0u && j < n, [&] { store(out[r == 0 ? j : n * r + j], cast<T>(total)); });
      }
    return;
  }
  // The parts' sums through threadgroup memory: [simdgroup][r * cols + c], then one thread an
  // output adds its group's parts in order.
  const uint32_t sums = rows * cols;
  TgArray partial = threadgroup_array<f32>(simdgroups * sums);
  for (uint32_t i = 0; i < sums; ++i) {
    Val total = simd_sum(acc[i].get());
    if_(simd_lane() == 0u, [&] { store(partial[simd_group() * sums + i], total); });
  }
  barrier();
  Val item = tid();
  if_(item < (simdgroups / ksplit) * sums, [&] {
    Val g = named("out_group", item / sums), i = named("out_item", item % sums);
    Val total = load(partial[g * (ksplit * sums) + i]);
    for (uint32_t p = 1; p < ksplit; ++p) total = total + load(partial[(g * ksplit + p) * sums + i]);
    Val r = i / cols, j = named("out_col", (program_id(0) * (simdgroups / ksplit) + g) * cols + i % cols);
    if_(j < n, [&] { store(out[r * n + j], cast<T>(total)); });
  });
}

}  // namespace

KernelSpec gemv_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("gemv", ir::Mode::Elementwise, {"x", "w", "out", "n", "k"}, MTILE_FLOAT_VARIANTS(gemv));
  k.family = "linear";
  k.summary = "out[m, n] = x[m, k] @ w[n, k]^T for a decode batch of m <= 8 rows, f32 sums; w read once";
  using rule::var;
  rule::Expr m = var("m"), n = var("n"), kk = var("k"), simd = var("simd_width"), cols = var("cols");
  rule::Expr per_tg = var("threads") / simd / var("ksplit") * cols;  // output columns a threadgroup takes
  k.dims = {"m", "n", "k"};
  // Two columns a simdgroup where the device would hold fewer simdgroups than there are columns
  // (n at least sm_count * max_threads_per_sm / simd_width), or where m >= 4 rows of x would
  // otherwise load 4 to 8 times the bytes of w from L1: each chunk of x then serves two rows of
  // w; four where m > 4. As many simdgroups a column group as it has columns (ksplit), each taking
  // every ksplit-th chunk of k: as many simdgroups as columns in all, so that taking several
  // columns a simdgroup does not leave the device with fewer loads in flight. Two chunks a loop
  // trip while the sums and the chunks' values stay few (m * cols <= 4), so that a lane has 32
  // bytes of w in flight (ptxas: 30 to 128 registers, no spills, on sm_90a). H100 (bench/NOTES.md),
  // us: m 8, n = k = 4096: 22.9 with ksplit 4 and one chunk a trip against 25.7 before; m 4: 19.6
  // with ksplit 2 against 23.7; m 1, n 14336: 51.5 against 55.4.
  // Tensor cores (mma, gemv_mma) where m > 4 rows of bf16 or f16 make the FMA body's sums the
  // bound: a group of ksplit simdgroups takes 16 columns, as many simdgroups to a group as make
  // half the simdgroups the device holds, up to 16; two chunks a trip. H100, us (9th session):
  // m 8 x 4096 x 4096 21.0 against 22.9; k 14336 54.9 / 56.8; n 14336 55.9 / 59.7 (ksplit 4; 59.8
  // with all the device's simdgroups). Not at m 1, where the FMA body reads each row of w in
  // 512-byte runs and stays ahead (4096 x 4096 19.4 against 20.8; n 128256 346.5 against 362-390).
  rule::Expr mma = var("mma"), slots = var("sm_count") * var("max_threads_per_sm") / simd;
  // A column a threadgroup, its row read by the four simdgroups together (cols 1, ksplit 4: 2 KiB
  // of it contiguous a step) at m <= 3 where rows hold 4096 elements or more, except m 3 with n at
  // least the device's simdgroups: H200, us, rule before / this (twenty-fourth session): m 1, n x k
  // 4096 x 4096 11.78 / 11.36, 4096 x 14336 31.20 / 29.70 (93% of copy), 14336 x 4096 30.21 /
  // 29.28 (94%), 128256 x 4096 233.7 / 231.2; m 2 13.60 / 12.54, 36.32 / 30.91, 31.84 / 31.62; m 3
  // 14.14 / 13.82, 37.92 / 34.50, but 14336 x 4096 33.02 / 35.20; k 1024 (m 1, n 4096) 2.29 / 3.67.
  rule::Expr row_a_group = m <= 3 && kk >= 4096 && (m <= 2 || n < slots);
  // The tensor-core body with w and x by tile copies (tma, gemv_tiles) where the target has them and
  // the buffers fit (GPUs; not the CPU engine's 64 KiB): H200, us, gemv_mma (ksplit 16) / tiles
  // with ksplit 8 and 3 buffers / ksplit 4 and 4 buffers (twenty-third session): 8 x 4096 x 14336
  // 34.1-34.3 / 31.2-31.4 / 31.9; 8 x 4096 x 4096 13.7-13.9 / 13.1 / 13.2; 8 x 14336 x 4096 35.3 /
  // 34.8 / 32.3. Eight simdgroups where the column groups make at most two threadgroups an SM, four
  // (more threadgroups an SM) past that.
  rule::Expr tiles = mma == 1 && var("tile_copy") == 1 && var("shared_memory") >= 96 * 1024;
  // rotate: column groups start their walks over k at trips (the FMA body's loop trips, gemv_tiles'
  // steps) of their own where rows take at most 8 (all the simdgroups would otherwise start at the
  // same offsets): H200, us, rule / rotate (twenty-fourth session): 1 x 4096 x 4096 12.67-12.74 /
  // 11.74-11.84, 1 x 14336 x 4096 30.75-30.94 / 29.86-29.89 (93% of copy), 2 x 4096 x 4096 13.9-14.1
  // / 13.5-13.6, 8 x 4096 x 4096 (tiles) 13.06-13.09 / 12.35-12.38, 4 x 4096 x 4096 the same; 16
  // steps: 8 x 14336 x 4096 the same; 28: 1 x 4096 x 14336 the same, 4 x 4096 x 14336 33.5 / 34.3,
  // 8 x 4096 x 14336 31.2-31.3 / 31.9-32.0. gemv_mma (no tile copies) keeps its order.
  rule::Expr groups = rule::ceil_div(n, kMmaCols);
  k.config = {
      {"m_rows", m},
      {"mma", rule::select(var("dtype_bytes") == 2 && simd == 32 && m > 4, 1, 0)},
      {"cols", rule::select(mma == 1, kMmaCols,
                            rule::select(m > 4, 4, rule::select(row_a_group || (n < slots && m < 4), 1, 2)))},
      {"unroll", rule::select(mma == 1 || m * cols <= 4, 2, 1)},
      {"ksplit", rule::select(mma == 1,
                              rule::select(tiles, rule::select(groups <= 2 * var("sm_count"), 8, 4),
                                           rule::clamp(slots / 2 / groups, 1, 16)),
                              rule::select(cols == 4 || row_a_group, 4, rule::select(cols == 2, 2, 1)))},
      {"threads", rule::select(mma == 1, var("ksplit") * simd, 4 * simd)},
      {"stages", rule::select(tiles, rule::select(var("ksplit") >= 8, 3, 4), 0)},
      {"tma", rule::select(tiles && var("stages") >= 2, 1, 0)},
      {"rotate", rule::select(kk <= 8 * rule::select(var("tma") == 1, 64 * var("ksplit"),
                                                     rule::select(mma == 0, kSpan * var("ksplit") * var("unroll"), 0)),
                              1, 0)}};
  k.dispatch = {.grid = rule::ceil_div(n, per_tg), .tpg = var("threads")};
  k.preconditions = {
      m >= 1, m <= kMaxRows, var("m_rows") == m, n >= 1, kk >= kChunk, kk % kChunk == 0, mma <= 1, cols >= 1,
      (mma == 0 && cols <= 4) || (mma == 1 && cols == kMmaCols && simd == 32 && var("threads") == var("ksplit") * simd),
      var("unroll") >= 1, var("unroll") <= 4, var("ksplit") >= 1, (var("threads") / simd) % var("ksplit") == 0,
      var("tpg") == var("threads"), var("grid") == rule::ceil_div(n, per_tg), var("grid_y") == 1, var("grid_z") == 1,
      // w and x by tile copies: the tensor-core body's, through two buffers or more.
      var("tma") == 0 || (var("tma") == 1 && mma == 1 && var("tile_copy") == 1 && var("stages") >= 2),
      // The walk over k started at a trip of its own in each column group: the FMA body's and
      // gemv_tiles'.
      var("rotate") <= 1, var("rotate") == 0 || mma == 0 || var("tma") == 1};
  k.sizes = {{"x", m * kk}, {"w", n * kk}, {"out", m * n}};
  // Weights of a trained layer's size (a Linear's are about 1 / sqrt(k)); sums of k products stay
  // O(1) to O(10) for the test shapes, so bf16 and f16 outputs round by up to 1/16 and 1/128.
  k.inits = {{"x", Init::uniform(-1.0, 1.0)}, {"w", Init::uniform(-0.1, 0.1)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    linear_reference(t["x"], t["w"], t["out"], dim(s, "m"), dim(s, "n"), dim(s, "k"));
  };
  k.tolerance = {{ScalarType::f32, {1e-5, 1e-3}}, {ScalarType::f16, {5e-4, 2e-2}}, {ScalarType::bf16, {4e-3, 0.1}}};
  k.flops = 2 * m * n * kk;
  k.example_shape = {{"m", 1}, {"n", 4096}, {"k", 4096}};
  k.test_shapes = {{{"m", 1}, {"n", 1}, {"k", 8}},     {{"m", 3}, {"n", 7}, {"k", 8}},
                   {{"m", 1}, {"n", 33}, {"k", 264}},  {{"m", 8}, {"n", 67}, {"k", 4104}},
                   {{"m", 2}, {"n", 5}, {"k", 14336}}, {{"m", 5}, {"n", 129}, {"k", 1024}},
                   {{"m", 4}, {"n", 9}, {"k", 520}}};
  // Llama-3-8B's projections at decode batches 1 and 8 (qkv, o: 4096 x 4096; the MLP's 14336 x
  // 4096 and 4096 x 14336) and its lm head (128256 x 4096).
  k.bench_shapes = {{{"m", 1}, {"n", 4096}, {"k", 4096}},  {{"m", 8}, {"n", 4096}, {"k", 4096}},
                    {{"m", 1}, {"n", 14336}, {"k", 4096}}, {{"m", 8}, {"n", 14336}, {"k", 4096}},
                    {{"m", 1}, {"n", 4096}, {"k", 14336}}, {{"m", 8}, {"n", 4096}, {"k", 14336}},
                    {{"m", 1}, {"n", 128256}, {"k", 4096}}};
  return k;
}

}  // namespace mtile::lib
