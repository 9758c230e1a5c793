// The body of the norm kernels for rows that fit in registers: each thread loads `chunks` chunks
// of 8 consecutive elements (16-byte accesses of bf16 once vectorize_memory groups them) of every
// row tensor before the reduction, so all the row's loads are in flight at once, and computes the
// output from registers after it: each element is read from memory once. The weights are held
// too where registers allow; otherwise they are read after the reduction (every row reads the
// same weights, so they come from L1/L2).
//   chunk j of a thread covers columns (j * threads + tid) * 8 .. + 7; a chunk that reaches past
//   n (the row's tail when n % 8 != 0) is read and written with masks instead.
#pragma once
#include <deque>
#include <vector>

#include "kernels/norm/norm.hpp"
#include "kernels/norm/strided_rms_norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

// Floats of row data a threadgroup may hold in registers: half of a 64K-register file, leaving
// the other half for addresses and temporaries.
constexpr uint32_t kRowRegisterBudget = 32768;

// Row tensors a form holds in registers until the output: Plain and the PreAdd forms the normed
// values, PostResidual those and the residual.
constexpr uint32_t held_row_tensors(NormForm form) {
  return form == NormForm::PostResidual ? 2 : 1;
}

// `eps` is an In<f32> eps_buf tensor or a Scalar<f32>; `weight` w or 1 + w (strided_rms_norm.hpp).
template <class T, NormForm form, NormWeight weight_form = NormWeight::W>
void rms_norm_in_registers(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w,
                           const dsl::Tensor& out, const dsl::CallArg& eps, const dsl::Constexpr& n, uint32_t threads,
                           uint32_t chunks) {
  using namespace dsl;
  constexpr bool pre_add = form == NormForm::PreAdd || form == NormForm::PreAddUnrounded;
  const bool hold_w = threads * chunks * kRowChunk * (held_row_tensors(form) + 1) <= kRowRegisterBudget;
  Val base = named("row_start", program_id(0) * n);
  std::deque<Var> normed, res, weight;  // per element of the thread's chunks
  std::vector<Val> cols;
  // Loads one chunk's elements into the registers: unmasked when the chunk is whole, else masked.
  auto load_chunk = [&](Val c, size_t first, bool whole) {
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      Val at = base + c + k, col = c + k;
      auto read = [&](const Tensor& t, Val i) { return whole ? load<f32>(t[i]) : load<f32>(t[i], col < n, lit(0.0f)); };
      if constexpr (pre_add) {
        Val exact = read(x, at) + read(*residual, at), sum = cast<T>(exact);
        if (whole)
          store((*residual)[at], sum);
        else
          store((*residual)[at], sum, col < n);
        normed[first + k] = form == NormForm::PreAdd ? sum.cast<f32>() : exact;  // PreAddUnrounded: the f32 sum
      } else {
        normed[first + k] = read(x, at);
        if constexpr (form == NormForm::PostResidual) res[first + k] = read(*residual, at);
      }
      if (hold_w) weight[first + k] = read(w, col);
    }
  };
  for (uint32_t j = 0; j < chunks; ++j) {
    Val c = named("col", (lit(j) * lsize() + tid()) * kRowChunk);
    cols.push_back(c);
    size_t first = normed.size();
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      normed.emplace_back(lit(0.0f));
      if (form == NormForm::PostResidual) res.emplace_back(lit(0.0f));
      if (hold_w) weight.emplace_back(lit(0.0f));
    }
    if_(
        c + kRowChunk <= n, [&] { load_chunk(c, first, true); }, [&] { load_chunk(c, first, false); });
  }
  Var ssq("ssq", lit(0.0f));
  for (const Var& v : normed) ssq = fma(v.get(), v.get(), ssq);
  Val rms = named("rms", call(mt_rms_inv_scalar_def(), {ssq.get(), eps, n}));
  const Tensor& dest = pre_add ? x : out;
  auto store_chunk = [&](Val c, size_t first, bool whole) {
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      Val col = c + k;
      Val wk = hold_w ? weight[first + k].get() : whole ? load<f32>(w[col]) : load<f32>(w[col], col < n, lit(0.0f));
      if constexpr (weight_form == NormWeight::OnePlusW) wk = 1.0f + wk;
      Val v = normed[first + k].get() * rms * wk;
      if constexpr (form == NormForm::PostResidual) v = res[first + k].get() + v;
      outs.push_back(v.cast<T>());
    }
    for (uint32_t k = 0; k < kRowChunk; ++k) {
      if (whole)
        store(dest[base + c + k], outs[k]);
      else
        store(dest[base + c + k], outs[k], c + k < n);
    }
  };
  for (uint32_t j = 0; j < chunks; ++j) {
    size_t first = j * kRowChunk;
    if_(
        cols[j] + kRowChunk <= n, [&] { store_chunk(cols[j], first, true); },
        [&] { store_chunk(cols[j], first, false); });
  }
}

}  // namespace mtile::lib

namespace mtile::lib {

// The norm kernels' body: rows in registers where the Config's `chunks` says they fit, else the
// strided body (which reads the row twice, the second time mostly from L2), which is also the
// generic code traced without a Config.
template <class T, NormForm form, NormWeight weight_form = NormWeight::W>
void rms_norm_row(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w, const dsl::Tensor& out,
                  const dsl::CallArg& eps, const dsl::Constexpr& n) {
  uint32_t chunks = dsl::config("chunks", 0);
  if (chunks == 0)
    strided_rms_norm<T, form, weight_form>(x, residual, w, out, eps, n);
  else
    rms_norm_in_registers<T, form, weight_form>(x, residual, w, out, eps, n, dsl::config("threads"), chunks);
}

// The norm kernels' Config and contract: one threadgroup a row; `threads` gives each thread about
// two chunks of 8 (one simdgroup at least, the target's largest threadgroup at most); `chunks`
// is how many chunks each thread then holds, or 0 where the row does not fit the registers.
inline void norm_row_contract(KernelSpec& k, NormForm form) {
  using rule::var;
  rule::Expr n = var("n"), simd = var("simd_width"), threads = var("threads");
  rule::Expr vectors = rule::ceil_div(n, kRowChunk), per_thread = rule::ceil_div(vectors, threads);
  k.dims = {"rows", "n"};
  k.config = {
      {"threads", rule::clamp(rule::round_up(rule::ceil_div(vectors, 2), simd), simd, var("max_tpg"))},
      {"chunks",
       rule::select(per_thread * threads * kRowChunk * held_row_tensors(form) <= kRowRegisterBudget, per_thread, 0)},
  };
  k.dispatch = {.grid = var("rows"), .tpg = threads};
  k.preconditions = spec::one_threadgroup_per_row();
  k.preconditions.push_back(n >= 1);
  // Held chunks must cover the row (a --config override may choose too few).
  k.preconditions.push_back(var("chunks") == 0 || var("chunks") * var("tpg") * kRowChunk >= n);
}

}  // namespace mtile::lib
