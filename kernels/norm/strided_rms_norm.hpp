// The body shared by the norm kernels for rows of any length: threads stride over the row in
// chunks of 8 consecutive elements (one 16-byte access of bf16 once vectorize_memory groups
// them), then over the n % 8 tail element by element; the sum of squares goes through
// mt_rms_inv_scalar (again, scaled, for a row whose sum overflows f32: kernels/norm/huge_rows.hpp);
// a second pass (from L2) writes the output.
//   Plain:        out = x * rms * w
//   PostResidual: out = residual + x * rms * w                       (the seed's math)
//   PreAdd:       residual = x + residual; x = residual * rms * w    (in place, vLLM's fused_add_rms_norm;
//                 the sum is rounded to T when stored and normalised as stored)
#pragma once
#include <vector>

#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"

namespace mtile::lib {

constexpr uint32_t kRowChunk = 8;

enum class NormForm { Plain, PostResidual, PreAdd };

template <class T, NormForm form>
void strided_rms_norm(const dsl::Tensor& x, const dsl::Tensor* residual, const dsl::Tensor& w, const dsl::Tensor& out,
                      const dsl::Tensor& eps_buf, const dsl::Constexpr& n) {
  using namespace dsl;
  Val base = named("row_start", program_id(0) * n);
  Val chunked = named("chunked", n - n % kRowChunk);
  Var ssq("ssq", lit(0.0f));
  // The value the norm is taken of, at element `at`; PreAdd also stores the sum.
  auto source = [&](Val at) {
    if constexpr (form == NormForm::PreAdd) {
      Val sum = cast<T>(load<f32>(x[at]) + load<f32>((*residual)[at]));
      return std::pair{sum.cast<f32>(), sum};
    } else {
      Val v = load<f32>(x[at]);
      return std::pair{v, v};
    }
  };
  for_(tid() * kRowChunk, chunked, lsize() * kRowChunk, [&](Val c) {
    Val row = base + c;
    std::vector<Val> sums;
    for (uint32_t k = 0; k < kRowChunk; ++k) {  // unrolled at trace time
      auto [v, stored] = source(row + k);
      ssq = fma(v, v, ssq);
      sums.push_back(stored);
    }
    if constexpr (form == NormForm::PreAdd)
      for (uint32_t k = 0; k < kRowChunk; ++k) store((*residual)[row + k], sums[k]);
  });
  for_(chunked + tid(), n, lsize(), [&](Val i) {
    auto [v, stored] = source(base + i);
    ssq = fma(v, v, ssq);
    if constexpr (form == NormForm::PreAdd) store((*residual)[base + i], stored);
  });
  const Tensor& normed = form == NormForm::PreAdd ? *residual : x;
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps_buf, n});
  if constexpr (sum_of_squares_can_overflow<T>) {
    auto each_element = [&](const auto& fn) {
      for_(tid(), n, lsize(), [&](Val i) { fn(load<f32>(normed[base + i])); });
    };
    rms = rescue_huge_row(rms, each_element, eps_buf, n);
  }
  rms = named("rms", rms);
  const Tensor& dest = form == NormForm::PreAdd ? x : out;
  auto value = [&](Val at, Val col) {
    Val v = load<f32>(normed[at]) * rms * load<f32>(w[col]);
    if constexpr (form == NormForm::PostResidual) return load<f32>((*residual)[at]) + v;
    return v;
  };
  for_(tid() * kRowChunk, chunked, lsize() * kRowChunk, [&](Val c) {
    Val row = base + c;
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kRowChunk; ++k) outs.push_back(value(row + k, c + k));
    for (uint32_t k = 0; k < kRowChunk; ++k) store(dest[row + k], outs[k].cast<T>());
  });
  for_(chunked + tid(), n, lsize(), [&](Val i) { store(dest[base + i], cast<T>(value(base + i, i))); });
}

}  // namespace mtile::lib
