// allreduce_add_rms_norm: the end of a tensor-parallel block, fused (docs/collectives.md). Each
// rank r holds partial sums x_r of the block's output; every rank computes
//   s = sum over ranks p of x_p (in f32, p = 0, 1, ... on every rank, rounded to T as an
//       all-reduce of T gives it);  residual <- s + residual (rounded to T);
//   out <- residual * rsqrt(mean(residual^2) + eps) * w
// One-shot: x is a symmetric tensor, so rank r reads its peers' partial sums straight from their
// memory (NVLink on CUDA), and the ranks agree through flags in the symmetric `flags`:
//   start: threadgroup b of rank r tells threadgroup b of each peer that r's x may be read (x was
//          written by earlier launches, visible to the peers once they completed: no fence), and
//          waits for the peers' word, then fences (what it reads next is ordered after it);
//   end:   once b has read its last row's partial sums (its threads all used them: the norm's
//          reduction), it tells the peers, normalises that row, and only then waits for the
//          peers' word: no rank overwrites x (its next layer) while a peer still reads it, and
//          the round trip hides behind the last row's second pass.
// Two-shot (past 2 ranks, Config `shots`): rank q reduces only its part of the rows (reduce-
// scatter) and stages their sums (rounded to T) in its own slice of x, which no peer reads for those
// rows; after a second exchange (phase 1: staged) every rank copies the other parts from the
// peers' slices and normalises them (all-gather). Each rank's x then crosses the links twice
// instead of ranks - 1 times; x's contents after a launch are unspecified.
// Threadgroup b syncs only with threadgroup b of the peers, and the grid is no larger than the
// device holds at once (`blocks`), so every threadgroup a peer waits for is running. A waiter
// clears the flag it consumed: flags start zeroed (alloc_symmetric) and stay zeroed between
// launches, with no epoch counter, so launches can be replayed from a CUDA graph.
//   flags of rank q: [phase (0 start, 1 end or staged, 2 end)][sender p][threadgroup b], flags_slot
//   apart.
#include <optional>

#include "kernels/collective/collective.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// Flag `phase` of threadgroup b: threads below `ranks` (one a peer) set the peer's flag for this
// rank, or wait for the peer's flag for this rank and clear it.
struct Flags {
  const Tensor& flags;
  Val rank, slot, blocks;
  uint32_t ranks;
  void each_peer(const std::function<void(Val)>& body) const {
    Val peer = tid();
    if_(peer < ranks && peer != rank, [&] { body(peer); });
  }
  Val at(Val owner, Val sender, uint32_t phase) const {
    return owner * slot + (lit(phase * ranks) + sender) * blocks + program_id(0);
  }
  // With `release`, a system fence first: the peers that see the flag see this threadgroup's
  // stores before it (a barrier before gathers the threadgroup's stores to the signalling threads).
  void signal(uint32_t phase, bool release) const {
    each_peer([&](Val peer) {
      if (release) fence_system();
      atomic_exchange(flags[at(peer, rank, phase)], lit(1u));
    });
  }
  // With `acquire`, a system fence after the wait: this rank's accesses after it see the peers'
  // before their signal (a barrier carries it to the threadgroup).
  void wait(uint32_t phase, bool acquire) const {
    each_peer([&](Val peer) {
      Val mine = at(rank, peer, phase);
      while_([] { return lit(true); },
             [&] { if_(atomic_compare_exchange(flags[mine], lit(1u), lit(0u)) == 1u, [] { break_(); }); });
      if (acquire) fence_system();
    });
  }
};

// One row's residual step and norm. `sum_at(i)` gives element i of the all-reduced sum, rounded
// to T (with `stage`, also stored to this rank's slice of x, for the peers of a two-shot); the new
// residual, sum + residual rounded to T, is stored and normalised into out. `after_reads` runs
// once every thread has used what it read (after the norm's reduction).
template <class T>
void residual_norm_row(const Tensor& x, const Tensor& residual, const Tensor& w, const Tensor& out,
                       const Tensor& eps_buf, Val row, Val n, const std::function<Val(Val)>& sum_at,
                       std::optional<Val> stage, const std::function<void()>& after_reads) {
  using namespace dsl;
  Val base = named("row_start", row * n);
  // Pass 1: the new residual and its sum of squares.
  Var ssq("ssq", lit(0.0f));
  for_(tid() * kRowChunk, n, lsize() * kRowChunk, [&](Val c) {
    std::vector<Val> sums;
    std::vector<Val> all;
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      all.push_back(sum_at(base + c + k));
      sums.push_back(cast<T>(cast<f32>(all.back()) + load<f32>(residual[base + c + k])));
    }
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      store(residual[base + c + k], sums[k]);
      if (stage) store(x[*stage + base + c + k], all[k]);
      Val v = cast<f32>(sums[k]);
      ssq = fma(v, v, ssq);
    }
  });
  Val rms = named("rms", call(mt_rms_inv_scalar_def(), {ssq.get(), eps_buf, n}));
  after_reads();
  // Pass 2: the norm, from the residual just stored (this thread's own elements: L1/L2).
  for_(tid() * kRowChunk, n, lsize() * kRowChunk, [&](Val c) {
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kRowChunk; ++k)
      outs.push_back(cast<T>(load<f32>(residual[base + c + k]) * rms * load<f32>(w[c + k])));
    for (uint32_t k = 0; k < kRowChunk; ++k) store(out[base + c + k], outs[k]);
  });
}

template <class T>
void allreduce_add_rms_norm(InOut<T> x, InOut<u32> flags, InOut<T> residual, In<T> w, Out<T> out, In<f32> eps_buf,
                            Scalar<u32> rank, Constexpr n, Constexpr rows, Constexpr x_slot, Constexpr flags_slot) {
  const uint32_t ranks = config("peers");  // unrolled: one vector load of each rank's chunk
  const bool two_shot = config("shots", 1) == 2;
  resident_threadgroups(config("resident"));
  Val blocks = grid_size(0);
  Flags sync{flags, rank, flags_slot, blocks, ranks};
  sync.signal(0, false);  // x was stored by earlier launches: nothing of this one to order
  sync.wait(0, true);
  barrier();
  // The all-reduced sum of element i, rounded to T.
  auto reduced = [&](Val i) {
    Val s = load<f32>(x[i]);  // rank 0's
    for (uint32_t p = 1; p < ranks; ++p) s = s + load<f32>(x[lit(p) * x_slot + i]);
    return cast<T>(s);
  };
  auto nothing = [] {};
  if (!two_shot) {
    for_(program_id(0), rows, blocks, [&](Val row) {
      // The threadgroup's last row: once its reads are used, no peer load of this launch is left.
      residual_norm_row<T>(x, residual, w, out, eps_buf, row, n, reduced, std::nullopt,
                           [&] { if_(rows - row <= blocks, [&] { sync.signal(1, false); }); });
    });
    sync.wait(1, false);
    return;
  }
  // Two-shot: rank q owns rows [q * part, (q + 1) * part). Reduce-scatter: this rank reduces its
  // own rows and stages their sums in its slice of x (rows only it reads); all-gather: it takes
  // the other ranks' sums from their slices once they say they are staged.
  Val part = named("part", (rows + (ranks - 1)) / ranks);
  auto owned = [&](Val q, const std::function<void(Val)>& body) {
    Val first = q * part;
    for_(first + program_id(0), min(first + part, rows), blocks, body);
  };
  owned(rank,
        [&](Val row) { residual_norm_row<T>(x, residual, w, out, eps_buf, row, n, reduced, rank * x_slot, nothing); });
  barrier();  // every thread's staged rows are stored before the signal
  sync.signal(1, true);
  sync.wait(1, true);
  barrier();
  for (uint32_t q = 0; q < ranks; ++q)
    if_(rank != q, [&] {
      owned(lit(q), [&](Val row) {
        auto staged = [&](Val i) { return load(x[lit(q) * x_slot + i]); };
        residual_norm_row<T>(x, residual, w, out, eps_buf, row, n, staged, std::nullopt, nothing);
      });
    });
  barrier();  // every peer load of this launch is done
  sync.signal(2, false);
  sync.wait(2, false);
}

}  // namespace

KernelSpec allreduce_add_rms_norm_spec() {
  KernelSpec k;
  k.def = define_generic_kernel(
      "allreduce_add_rms_norm", ir::Mode::Reduction,
      {"x", "flags", "residual", "w", "out", "eps_buf", "rank", "n", "rows", "x_slot", "flags_slot"},
      MTILE_FLOAT_VARIANTS(allreduce_add_rms_norm));
  k.family = "collective";
  k.summary = "all-reduce over ranks (one-shot or two-shot, symmetric memory) + residual add + RMSNorm";
  using rule::var;
  rule::Expr n = var("n"), rows = var("rows"), ranks = var("ranks");
  k.dims = {"ranks", "rows", "n"};
  rule::Expr threads = rule::clamp(rule::round_up(rule::ceil_div(n, kRowChunk), var("simd_width")),
                                   4 * var("simd_width"), rule::min(var("max_tpg"), 1024));
  k.config = {{"peers", ranks},
              // Two-shot past 2 ranks, where rows split: each rank's x crosses the links twice
              // instead of ranks - 1 times (for 2 ranks the same, with one exchange more).
              {"shots", rule::select(ranks > 2 && rows >= ranks, 2, 1)},
              {"threads", threads},
              // Threadgroups a multiprocessor holds at once, and the grid: no more than the device
              // holds at once (a threadgroup spins until its peers' threadgroup runs).
              {"resident", rule::max(rule::min(var("max_threads_per_sm") / var("threads"), var("max_tgs_per_sm")), 1)},
              {"blocks", rule::min(rows, var("sm_count") * var("resident"))},
              {"x_slot", rows * n},
              {"flags_slot", 3 * ranks * var("blocks")}};
  k.dispatch = {.grid = var("blocks"), .tpg = var("threads")};
  k.preconditions = {ranks >= 1,
                     ranks <= 8,
                     var("peers") == ranks,
                     rows >= 1,
                     n >= kRowChunk,
                     n % kRowChunk == 0,
                     var("tpg") == var("threads"),
                     var("tpg") >= ranks,
                     var("grid") <= var("sm_count") * var("resident"),
                     var("grid") == var("blocks"),
                     var("grid_y") == 1,
                     var("grid_z") == 1,
                     var("x_slot") >= rows * n,
                     var("x_slot") % kRowChunk == 0,
                     var("shots") == 1 || var("shots") == 2,
                     var("flags_slot") >= 3 * ranks * var("grid")};
  k.constexprs = {{"x_slot", var("x_slot")}, {"flags_slot", var("flags_slot")}};
  k.launch_constexprs = {"rows"};
  k.symmetric = {"x", "flags"};
  // flags: zero before and after a launch; x: the partial sums, which a two-shot overwrites with
  // the new residual (dead once reduced). The check leaves both alone.
  k.scratch = {"flags", "x"};
  k.sizes = {{"x", ranks * var("x_slot")},
             {"flags", ranks * var("flags_slot")},
             {"residual", rows * n},
             {"w", n},
             {"out", rows * n},
             {"eps_buf", 1}};
  k.inits = {{"flags", Init::constant(0)}, {"eps_buf", Init::constant(1e-6)}};
  // Traffic of one rank: every rank's x once, residual read and written, out written, w.
  k.bytes = var("dtype_bytes") * (ranks * rows * n + 3 * rows * n + n);
  k.reference = allreduce_add_rms_norm_reference;
  k.tolerance = float_tolerances();
  k.example_shape = {{"ranks", 2}, {"rows", 4}, {"n", 4096}};
  k.test_shapes = {{{"ranks", 2}, {"rows", 4}, {"n", 4096}}, {{"ranks", 4}, {"rows", 3}, {"n", 1000}},
                   {{"ranks", 4}, {"rows", 10}, {"n", 520}},  // two-shot: rows 0-2, 3-5, 6-8, 9
                   {{"ranks", 3}, {"rows", 7}, {"n", 264}},   // two-shot
                   {{"ranks", 2}, {"rows", 9}, {"n", 2888}}, {{"ranks", 1}, {"rows", 2}, {"n", 64}},
                   {{"ranks", 3}, {"rows", 1}, {"n", 8}}};
  for (uint32_t rows_ : {1u, 8u, 32u, 128u, 1024u, 8192u})
    for (uint32_t n_ : {4096u, 8192u}) k.bench_shapes.push_back({{"ranks", 2}, {"rows", rows_}, {"n", n_}});
  return k;
}

}  // namespace mtile::lib
