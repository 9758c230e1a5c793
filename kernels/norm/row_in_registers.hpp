// The body of the norm kernels for rows that fit in registers: each thread loads `chunks` chunks
// of 8 consecutive elements (16-byte accesses of bf16 once vectorize_memory groups them) of the
// row before the reduction, so all the row's loads are in flight at once, and computes the output
// from registers after it: each element is read from memory once. With `hold` the residual (post)
// and the weights are loaded before the reduction too; without, after it, which leaves registers
// for more threadgroups a multiprocessor (every row reads the same weights: L1/L2 hits). Cache
// hints (docs/IR.md): rows are read once (stream; x of the plain and post forms stays unhinted,
// H100 measured no gain), the weights by every row (keep).
//   chunk j of a thread covers columns (j * threads + tid) * 8 .. + 7; a chunk that reaches past
//   n (the row's tail when n % 8 != 0) is read and written with masks instead. The first `whole`
//   chunks (the Config's: whole for every thread) are read without a branch: chunks behind a
//   branch each convert their loads before the next chunk's are issued, so they wait for memory
//   one after another. The rule leaves the last chunk behind its branch where rows make waves,
//   which keeps the loads out of the reduction's block: there ptxas issues the residual's and the
//   weights' loads after the first chunk's sum of squares, waiting for x (H100, post 16384 x 4096:
//   133.4 us with no branch, 127.8 with it; bench/NOTES.md twelfth session); not for the pre-norms
//   of fewer rows than SMs, where the branch is only latency.
#pragma once
#include <deque>
#include <utility>
#include <vector>

#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/norm/strided_rms_norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

// Floats of row data a threadgroup may hold in registers: half of a 64K-register file, leaving
// the other half for addresses and temporaries.
constexpr uint32_t kRowRegisterBudget = 32768;
// Floats of the row a thread may hold and still fit 32 registers (a full multiprocessor's share).
constexpr uint32_t kResidentFloats = 16;

// Row tensors a form holds in registers with `hold`: the normed values (for the PreAdd forms the
// sum) and the weights, and for PostResidual the residual.
constexpr uint32_t held_row_tensors(NormForm form) {
  return form == NormForm::PostResidual ? 3 : 2;
}

// `eps` is an In<f32> eps_buf tensor or a Scalar<f32>; `weight_form` w or 1 + w, and the PreAdd
// forms normalise the stored sum or the f32 sum (strided_rms_norm.hpp).
template <class T, NormForm form, NormWeight weight_form = NormWeight::W>
void rms_norm_in_registers(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w,
                           const dsl::Tensor& out, const dsl::CallArg& eps, const dsl::Constexpr& n, uint32_t chunks,
                           uint32_t whole, bool hold) {
  using namespace dsl;
  constexpr bool post = form == NormForm::PostResidual;
  constexpr bool pre_add = form == NormForm::PreAdd || form == NormForm::PreAddUnrounded;
  Val base = named("row_start", program_id(0) * n);
  std::deque<Var> normed, res, weight;  // per element of the thread's chunks
  std::vector<Val> cols;
  // Reads element `col` of a row tensor at `at`, with a cache hint: unmasked in a whole chunk, else masked.
  auto reader = [&](bool whole, Val col) {
    return [&, whole, col](const Tensor& t, Val at, ir::CacheHint hint = ir::CacheHint::Normal) {
      MemRef r = t[at].hinted(hint);
      return whole ? load<f32>(r) : load<f32>(r, col < n, lit(0.0f));
    };
  };
  constexpr auto keep = ir::CacheHint::Keep, once = ir::CacheHint::Stream;
  // PreAdd: the sums of the chunks read without a branch are stored after every chunk's loads are
  // issued (deferred); a store between two chunks' loads holds the second's until the first's have
  // arrived (ptxas keeps loads below earlier stores), one chunk in flight at a time.
  std::vector<std::pair<Val, std::vector<Val>>> deferred;
  bool in_branch = false;
  auto load_chunk = [&](Val c, size_t first, bool whole) {
    std::vector<Val> sums;  // PreAdd: stored after the chunk's loads, so that both group into vectors
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      Val at = base + c + k, col = c + k;
      auto read = reader(whole, col);
      if constexpr (pre_add) {
        Val exact = read(x, at, once) + read(*residual, at, once);
        sums.push_back(cast<T>(exact));
        normed[first + k] = form == NormForm::PreAdd ? sums.back().cast<f32>() : exact;  // PreAddUnrounded: the f32 sum
      } else {
        normed[first + k] = read(x, at);
        if (post && hold) res[first + k] = read(*residual, at, once);
      }
      if (hold) weight[first + k] = read(w, col, keep);
    }
    if (!in_branch && !sums.empty()) {
      deferred.emplace_back(c, std::move(sums));
      return;
    }
    for (uint32_t k = 0; k < sums.size(); ++k) {
      if (whole)
        store((*residual)[base + c + k], sums[k]);
      else
        store((*residual)[base + c + k], sums[k], c + k < n);
    }
  };
  for (uint32_t j = 0; j < chunks; ++j) {
    cols.push_back(named("col", (lit(j) * lsize() + tid()) * kRowChunk));
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      normed.emplace_back(lit(0.0f));
      if (post && hold) res.emplace_back(lit(0.0f));
      if (hold) weight.emplace_back(lit(0.0f));
    }
  }
  // Chunk j: read whole without a branch below `whole`, else whole or masked as the thread's columns say.
  auto each_chunk = [&](const auto& chunk) {
    for (uint32_t j = 0; j < chunks; ++j) {
      size_t first = j * kRowChunk;
      if (j < whole) {
        chunk(cols[j], first, true);
      } else {
        in_branch = true;
        if_(
            cols[j] + kRowChunk <= n, [&] { chunk(cols[j], first, true); }, [&] { chunk(cols[j], first, false); });
        in_branch = false;
      }
    }
  };
  each_chunk(load_chunk);
  for (const auto& [c, sums] : deferred)
    for (uint32_t k = 0; k < sums.size(); ++k) store((*residual)[base + c + k], sums[k]);
  Var ssq("ssq", lit(0.0f));
  for (const Var& v : normed) ssq = fma(v.get(), v.get(), ssq);
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps, n});
  if constexpr (sum_of_squares_can_overflow<T>) {  // the row's values are in registers (0 past n)
    auto each_element = [&](const auto& fn) {
      for (const Var& v : normed) fn(v.get());
    };
    rms = rescue_huge_row(rms, each_element, eps, n);
  }
  rms = named("rms", rms);
  const Tensor& dest = pre_add ? x : out;
  auto store_chunk = [&](Val c, size_t first, bool whole) {
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      Val col = c + k, at = base + col;
      auto read = reader(whole, col);
      Val wk = hold ? weight[first + k].get() : read(w, col, keep);
      if constexpr (weight_form == NormWeight::OnePlusW) wk = 1.0f + wk;
      Val v = normed[first + k].get() * rms * wk;
      if constexpr (post) v = (hold ? res[first + k].get() : read(*residual, at, once)) + v;
      outs.push_back(v.cast<T>());
    }
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      if (whole)
        store(dest[base + c + k], outs[k]);
      else
        store(dest[base + c + k], outs[k], c + k < n);
    }
  };
  each_chunk(store_chunk);
}

// The norm kernels' body: rows in registers where the Config's `chunks` says they fit, else the
// strided body (which reads the row twice, the second time mostly from L2), which is also the
// generic code traced without a Config.
template <class T, NormForm form, NormWeight weight_form = NormWeight::W>
void rms_norm_row(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w, const dsl::Tensor& out,
                  const dsl::CallArg& eps, const dsl::Constexpr& n) {
  uint32_t chunks = dsl::config("chunks", 0);
  if (chunks == 0) {
    strided_rms_norm<T, form, weight_form>(x, residual, w, out, eps, n);
  } else {
    dsl::resident_threadgroups(dsl::config("resident"));
    rms_norm_in_registers<T, form, weight_form>(x, residual, w, out, eps, n, chunks, dsl::config("whole"),
                                                dsl::config("hold") != 0);
  }
}

// Rows held in registers up to this length; longer rows take the strided body, whose second pass
// reads the row again from L2 (kept there by cache hints). H100, bf16, us, in registers -> strided
// (bench/NOTES.md, eleventh session): post 4096 x 5120 42.2 -> 39.1, 7168 57.8 -> 55.0, 8192 65.1 ->
// 63.4, 2048 x 16384 66.1 -> 63.9; 1 x 8192 in a graph 2.36 -> 1.98; at 4096 the held row stays
// ahead (16384 x 4096 128.2 against 130.1).
constexpr uint32_t kHeldRowMax = 4096;

// The plain norms (one tensor read, one written a chunk) hold rows of kPlainLongRowMin to
// kPlainLongRowMax elements too, where the rows make at least kPlainLongWaves waves of the held
// rows: about kPlainLongChunks chunks a thread, the threads rounded up to pairs of simdgroups, the
// weights read after the reduction. H100, rms_norm, us, strided (n / 16 threads) -> held
// (bench/NOTES.md, sixteenth session): 4096 rows x 5120 26.5 -> 26.2, 6144 32.0 -> 31.1, 7168 37.7
// -> 36.8, 8192 43.1 -> 42.3, 10000 55.6 -> 53.4, 16384 88.5 -> 87.8, but 12288 66.9 -> 67.4;
// 2048 x 16384 44.4 -> 43.6. Slower: 4104 (3 chunks a thread) 22.5 -> 24.3; rows of one or two
// waves, 1056 x 8192 13.9 -> 14.2, 256 x 8192 3.18 -> 3.29; 7 simdgroups (7168 at 224 threads
// 39.1) or 5 (5120 at 160: 27.1). Not the post- and pre-norms, whose strided body stays ahead
// (post 4096 x 8192 63.3 against 65.4-66.7 held), nor 8 chunks a thread (16384: 46.4).
constexpr uint32_t kPlainLongRowMin = 5120;
constexpr uint32_t kPlainLongRowMax = 16384;
constexpr uint32_t kPlainLongChunks = 4;
constexpr uint32_t kPlainLongWaves = 4;

// Registers a thread of a held row takes besides the row's floats (sm_90a: 40 for the post-norm's
// one chunk, 24 floats; ptxas, bench/NOTES.md twelfth session).
constexpr uint32_t kThreadBaseRegisters = 16;

// Held rows take two chunks a thread (n / 16 threads) where the rows fill the device and those
// threads make whole groups of this many simdgroups. H100, rms_norm, us (bench/NOTES.md, thirteenth
// session): 4096 x 4096 23.0 -> 21.1, 16384 x 4096 90.0 -> 86.5, 256 x 4096 2.24 -> 2.17, 8192 x
// 2048 22.2 -> 21.1; but at 192, 96 or 64 threads slower (4096 x 3072 17.5 -> 19.1, x 1536 10.4 ->
// 11.2, x 1000 4.60 -> 4.79). The post- and pre-norms too since the H200 (eighteenth session): post
// 16384 x 4096 99.6 -> 92.7, pre 132.3 -> 129.3, 2048 x 4096 within 1% (the H100: 128.0 either way).
// Measured on CUDA only: targets that do not report their register file (Metal, the CPU engine)
// keep one chunk.
constexpr uint32_t kPairWarps = 4;

// Rows resident at once on the device, one a threadgroup of `t` threads each holding `tensors` row
// tensors of ceil(vectors / t) chunks in registers (allocated by 8s; no limit where the target's
// register file is not known).
inline rule::Expr resident_rows(const rule::Expr& t, const rule::Expr& vectors, uint32_t tensors) {
  using rule::var;
  rule::Expr regs = rule::round_up(rule::ceil_div(vectors, t) * (kRowChunk * tensors) + kThreadBaseRegisters, 8);
  rule::Expr file = var("registers_per_sm");
  rule::Expr by_registers = rule::select(file == 0, var("max_tgs_per_sm"), file / (regs * t));
  return rule::min(rule::min(var("max_tgs_per_sm"), var("max_threads_per_sm") / t), by_registers) * var("sm_count");
}

// The norm kernels' Config and contract: one threadgroup a row. Rows of up to kHeldRowMax: held in
// registers, one chunk of 8 a thread (`threads` = n / 8; `chunks` = 1, or more where the target's
// largest threadgroup is smaller, or two as kPairWarps says; 0 where the
// row does not fit the registers). Longer rows (but the plain norm's, kPlainLongRowMin above):
// `chunks` = 0, the strided body, with `threads` = n / 16 (two chunks a thread each pass: H100
// sweep at 5120, 7168, 8192, 16384, the best or within 2% of it) or, where there are fewer rows
// than multiprocessors and latency rules, n / 8. `hold`: whether the residual and the weights are
// held as well, where they take no more than half the register budget (beyond that, fewer resident
// threadgroups cost more than the second read), and for the plain norm only with one or two chunks
// a thread (H100: rms_norm 4096 x 8192 61.6 us held, 50.1 not; 2048 x 4096 at two chunks 12.35
// held, 12.93 not). `resident`: where a thread holds
// only the normed row and at most kResidentFloats of it, as many threadgroups as a multiprocessor
// has threads for, asked of the code generator (dsl::resident_threadgroups): the huge-row rescue's
// code otherwise takes a thread past 32 registers and halves the threadgroups an SM holds (H100:
// 87.8 us at 2048 x 16384, 73.8 asked; bench/NOTES.md); else 0, no request. `whole`: the chunks
// but the last that every thread reads whole, min(chunks - 1, n / (threads * 8)); for the pre-norms
// of fewer rows than multiprocessors every chunk that is (H200, add_rms_norm in a graph, us: 1 x
// 4096 1.52 -> 1.44, 32 x 4096 1.67 -> 1.54; at more rows mixed: 2048 x 4096 18.30 -> 17.73, 256 x
// 4096 2.22 -> 2.27, 16384 x 4096 130.2 -> 134.1, bench/NOTES.md twenty-first session). Where the
// held rows do not all fit the device at once with n / 8 threads but do with a half or a quarter
// of them (more chunks a thread, fewer registers a row: each thread's own take less), `threads`
// is that: a launch of one wave waits for memory once, a second partial wave waits again (H100,
// post 2048 x 1000: 40 registers a thread, 12 rows an SM, 1584 at once; 64 threads of 2 chunks,
// 16 an SM, all 2048).
inline void norm_row_contract(KernelSpec& k, NormForm form) {
  using rule::var;
  rule::Expr n = var("n"), simd = var("simd_width"), threads = var("threads"), chunks = var("chunks");
  rule::Expr vectors = rule::ceil_div(n, kRowChunk);
  rule::Expr held = n <= kHeldRowMax;
  rule::Expr fills_device = var("rows") >= var("sm_count");
  rule::Expr long_threads =
      rule::min(rule::round_up(rule::ceil_div(vectors, kPlainLongChunks), 2 * simd), var("max_tpg"));
  rule::Expr plain_long = form == NormForm::Plain
                              ? n >= kPlainLongRowMin && n <= kPlainLongRowMax && var("registers_per_sm") != 0 &&
                                    var("rows") >= kPlainLongWaves * resident_rows(long_threads, vectors, 1)
                              : rule::Expr(0);
  rule::Expr per_strided = rule::select(fills_device, 2, 1);
  rule::Expr two_chunks = var("registers_per_sm") != 0 && fills_device && vectors % (2 * kPairWarps * simd) == 0;
  rule::Expr per =
      rule::select(held, rule::ceil_div(vectors, var("max_tpg")) * rule::select(two_chunks, 2, 1), per_strided);
  rule::Expr per_thread = rule::ceil_div(vectors, threads);
  rule::Expr fits_half_budget = chunks * threads * kRowChunk * held_row_tensors(form) <= kRowRegisterBudget / 2;
  rule::Expr may_hold = form == NormForm::Plain ? chunks <= 2 : rule::Expr(1);
  rule::Expr pre_add = rule::Expr(form == NormForm::PreAdd || form == NormForm::PreAddUnrounded ? 1 : 0);
  k.dims = {"rows", "n"};
  rule::Expr wide = rule::select(plain_long, long_threads,
                                 rule::clamp(rule::round_up(rule::ceil_div(vectors, per), simd), simd, var("max_tpg")));
  rule::Expr half = rule::round_up(wide / 2, simd), quarter = rule::round_up(wide / 4, simd);
  auto all_resident = [&](const rule::Expr& t) {
    return var("rows") <= resident_rows(t, vectors, held_row_tensors(form));
  };
  rule::Expr one_wave =
      rule::select(!held || all_resident(wide), wide,
                   rule::select(all_resident(half), half, rule::select(all_resident(quarter), quarter, wide)));
  k.config = {
      {"threads", one_wave},
      {"chunks",
       rule::select((held || plain_long) && per_thread * threads * kRowChunk <= kRowRegisterBudget, per_thread, 0)},
      {"hold", rule::select(chunks >= 1 && fits_half_budget && may_hold, 1, 0)},
      {"resident", rule::select(chunks >= 1 && var("hold") == 0 && chunks * kRowChunk <= kResidentFloats,
                                rule::min(var("max_threads_per_sm") / threads, var("max_tgs_per_sm")), 0)},
      {"whole",
       rule::select(chunks == 0, 0,
                    rule::min(chunks - rule::select(pre_add && !fills_device, 0, 1), n / (threads * kRowChunk)))},
  };
  k.dispatch = {.grid = var("rows"), .tpg = threads};
  k.preconditions = spec::one_threadgroup_per_row();
  k.preconditions.push_back(n >= 1);
  // Held chunks must cover the row (a --config override may choose too few).
  k.preconditions.push_back(chunks == 0 || chunks * var("tpg") * kRowChunk >= n);
  k.preconditions.push_back(var("hold") <= 1);
  // Chunks read without a branch: whole for every thread (the rule leaves the last behind its branch;
  // a --config override may ask for every chunk).
  k.preconditions.push_back(var("whole") == 0 ||
                            (var("whole") <= chunks && var("whole") * var("tpg") * kRowChunk <= n));
  // A residency a multiprocessor can give (a --config override may ask for more).
  k.preconditions.push_back(var("resident") * var("tpg") <= var("max_threads_per_sm"));
  k.preconditions.push_back(var("resident") <= var("max_tgs_per_sm"));
}

}  // namespace mtile::lib
