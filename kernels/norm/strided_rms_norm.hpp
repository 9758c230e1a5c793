// The body shared by the norm kernels for rows of any length: threads stride over the row in
// chunks of 8 consecutive elements (one 16-byte access of bf16 once vectorize_memory groups
// them), then over the n % 8 tail element by element; the sum of squares goes through
// mt_rms_inv_scalar; a second pass (from L2) writes [residual +] x * rms * w.
#pragma once
#include <vector>

#include "kernels/norm/norm.hpp"

namespace mtile::lib {

constexpr uint32_t kRowChunk = 8;

template <class T>
void strided_rms_norm(const dsl::In<T>& x, const dsl::In<T>* residual, const dsl::In<T>& w, const dsl::Out<T>& out,
                      const dsl::In<dsl::f32>& eps_buf, const dsl::Constexpr& n) {
  using namespace dsl;
  Val base = program_id(0) * n;
  Val chunked = n - n % kRowChunk;
  Var ssq(lit(0.0f));
  for_(tid() * kRowChunk, chunked, lsize() * kRowChunk, [&](Val c) {
    Val row = base + c;
    for (uint32_t k = 0; k < kRowChunk; ++k) {  // unrolled at trace time
      Val v = load<f32>(x[row + k]);
      ssq = fma(v, v, ssq);
    }
  });
  for_(chunked + tid(), n, lsize(), [&](Val i) {
    Val v = load<f32>(x[base + i]);
    ssq = fma(v, v, ssq);
  });
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps_buf, n});
  auto value = [&](Val at, Val col) {
    Val v = load<f32>(x[at]) * rms * load<f32>(w[col]);
    return residual ? load<f32>((*residual)[at]) + v : v;
  };
  for_(tid() * kRowChunk, chunked, lsize() * kRowChunk, [&](Val c) {
    Val row = base + c;
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kRowChunk; ++k) outs.push_back(value(row + k, c + k));
    for (uint32_t k = 0; k < kRowChunk; ++k) store(out[row + k], outs[k].cast<T>());
  });
  for_(chunked + tid(), n, lsize(), [&](Val i) { store(out[base + i], cast<T>(value(base + i, i))); });
}

}  // namespace mtile::lib
