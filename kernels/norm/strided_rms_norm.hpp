// The body shared by the norm kernels for rows of any length: threads stride over the row in
// chunks of 8 consecutive elements (one 16-byte access of bf16 once vectorize_memory groups
// them), then over the n % 8 tail element by element; the sum of squares goes through
// mt_rms_inv_scalar (again, scaled, for a row whose sum overflows f32: kernels/norm/huge_rows.hpp);
// a second pass (from L2) writes the output. Cache hints (docs/IR.md) keep what the second pass
// reads again (the first pass's rows, the PreAdd sum, the weights) in L2 ahead of what it reads for
// the last time: H100, post-norm 4096 x 7168 56.7 -> 54.9 us (bench/NOTES.md, eleventh session).
//   Plain:           out = x * rms * w
//   PostResidual:    out = residual + x * rms * w                       (the seed's math)
//   PreAdd:          residual = x + residual; x = residual * rms * w    (in place, vLLM's fused_add_rms_norm;
//                    the sum is rounded to T when stored and normalised as stored)
//   PreAddUnrounded: the same stores, but rms and x are computed from the f32 sum before it is
//                    rounded (the second pass adds x and residual again instead of reading the sum)
// The weight is w, or 1 + w (NormWeight::OnePlusW: Gemma's checkpoints store w - 1), in f32.
#pragma once
#include <vector>

#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/row_loops.hpp"

namespace mtile::lib {

constexpr uint32_t kRowChunk = 8;

enum class NormForm { Plain, PostResidual, PreAdd, PreAddUnrounded };
enum class NormWeight { W, OnePlusW };

// `eps` is an In<f32> eps_buf tensor (the older kernels) or a Scalar<f32> value.
template <class T, NormForm form, NormWeight weight = NormWeight::W>
void strided_rms_norm(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w, const dsl::Tensor& out,
                      const dsl::CallArg& eps, const dsl::Constexpr& n) {
  using namespace dsl;
  constexpr bool pre_add = form == NormForm::PreAdd || form == NormForm::PreAddUnrounded;
  Val base = named("row_start", program_id(0) * n);
  Var ssq("ssq", lit(0.0f));
  // The value the norm is taken of, at element `at`, and (PreAdd forms) the sum as stored; `last`
  // where the row is not read again (PreAdd's first pass, every second pass).
  auto source = [&](Val at, bool last) {
    auto hinted = [last](MemRef r) { return last ? r.stream() : r.keep(); };
    if constexpr (pre_add) {
      Val sum = load<f32>(hinted(x[at])) + load<f32>(hinted((*residual)[at]));
      Val stored = cast<T>(sum);
      return std::pair{form == NormForm::PreAdd ? stored.cast<f32>() : sum, stored};
    } else {
      Val v = load<f32>(hinted(x[at]));
      return std::pair{v, v};
    }
  };
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    Val row = base + c;
    std::vector<Val> sums;
    for (uint32_t k = 0; k < count; ++k) {  // unrolled at trace time
      auto [v, stored] = source(column(row, k), form == NormForm::PreAdd);
      ssq = fma(v, v, ssq);
      sums.push_back(stored);
    }
    if constexpr (form == NormForm::PreAdd)
      for (uint32_t k = 0; k < count; ++k) store((*residual)[column(row, k)].keep(), sums[k]);
  });
  const Tensor& normed = form == NormForm::PreAdd ? *residual : x;
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps, n});
  if constexpr (sum_of_squares_can_overflow<T>) {
    auto each_element = [&](const auto& fn) {  // PreAdd reads the stored sum, PreAddUnrounded adds again
      for_(tid(), n, lsize(), [&](Val i) {
        if constexpr (form == NormForm::PreAddUnrounded)
          fn(source(base + i, false).first);
        else
          fn(load<f32>(normed[base + i]));
      });
    };
    rms = rescue_huge_row(rms, each_element, eps, n);
  }
  rms = named("rms", rms);
  const Tensor& dest = pre_add ? x : out;
  auto scale = [&](Val col) {
    Val wv = load<f32>(w[col].keep());  // every row reads it
    if constexpr (weight == NormWeight::OnePlusW) return 1.0f + wv;
    return wv;
  };
  for_row_chunks(tid(), lsize(), n, kRowChunk, [&](Val c, uint32_t count) {
    Val row = base + c;
    std::vector<Val> sums, outs;
    for (uint32_t k = 0; k < count; ++k) {
      Val at = column(row, k);
      if constexpr (form == NormForm::PreAddUnrounded) {
        auto [v, stored] = source(at, true);
        sums.push_back(stored);
        outs.push_back(v * rms * scale(column(c, k)));
      } else {
        Val v = load<f32>(normed[at].stream()) * rms * scale(column(c, k));
        if constexpr (form == NormForm::PostResidual) v = load<f32>((*residual)[at].stream()) + v;
        outs.push_back(v);
      }
    }
    if constexpr (form == NormForm::PreAddUnrounded)
      for (uint32_t k = 0; k < count; ++k) store((*residual)[column(row, k)], sums[k]);
    for (uint32_t k = 0; k < count; ++k) store(dest[column(row, k)], outs[k].cast<T>());
  });
}

}  // namespace mtile::lib
