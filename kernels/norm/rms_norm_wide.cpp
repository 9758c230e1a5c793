// mt_rms_norm_wide: RMSNorm of rows of any length; threads stride over the row, accumulate the
// sum of squares in a local, and share mt_rms_inv_scalar with the rest of the family.
#include <vector>

#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// Threads take chunks of 8 consecutive elements (16 bytes of bf16, one wide access each once
// vectorize_memory has grouped them), then the n % 8 tail element by element.
constexpr uint32_t kChunk = 8;

template <class T>
void mt_rms_norm_wide(In<T> x, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  Val base = program_id(0) * n;
  Val chunked = n - n % kChunk;
  Var ssq(lit(0.0f));
  for_(tid() * kChunk, chunked, lsize() * kChunk, [&](Val c) {
    Val row = base + c;
    for (uint32_t k = 0; k < kChunk; ++k) {  // unrolled at trace time
      Val v = load<f32>(x[row + k]);
      ssq = fma(v, v, ssq);
    }
  });
  for_(chunked + tid(), n, lsize(), [&](Val i) {
    Val v = load<f32>(x[base + i]);
    ssq = fma(v, v, ssq);
  });
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps_buf, n});
  for_(tid() * kChunk, chunked, lsize() * kChunk, [&](Val c) {
    Val row = base + c;
    std::vector<Val> outs;
    for (uint32_t k = 0; k < kChunk; ++k) outs.push_back(load<f32>(x[row + k]) * rms * load<f32>(w[c + k]));
    for (uint32_t k = 0; k < kChunk; ++k) store(out[row + k], outs[k].cast<T>());
  });
  for_(chunked + tid(), n, lsize(),
       [&](Val i) { store(out[base + i], cast<T>(load<f32>(x[base + i]) * rms * load<f32>(w[i]))); });
}

}  // namespace

KernelSpec mt_rms_norm_wide_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("mt_rms_norm_wide", ir::Mode::Reduction, {"x", "w", "out", "eps_buf", "n"},
                                MTILE_FLOAT_VARIANTS(mt_rms_norm_wide));
  k.family = "norm";
  k.summary = "RMSNorm of rows of any length: threads stride over the row in chunks of 8";
  strided_row_contract(k);
  k.elements = norm_elements;
  k.inits = {{"eps_buf", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, 0, -1, 1, 2, 3); };
  k.tolerance = float_tolerances();
  k.bytes = [](const Shape& s, ScalarType t) {
    return (2 * uint64_t(dim(s, "rows")) * dim(s, "n") + dim(s, "n")) * storage_bytes(t) + 4;
  };
  k.example_shape = {{"rows", 32}, {"n", 8192}};
  k.test_shapes = {
      {{"rows", 3}, {"n", 1}}, {{"rows", 2}, {"n", 100}}, {{"rows", 4}, {"n", 4096}}, {{"rows", 2}, {"n", 8203}}};
  k.bench_shapes = {{{"rows", 4096}, {"n", 8192}}, {{"rows", 2048}, {"n", 16384}}};
  return k;
}

}  // namespace mtile::lib
