// Products with a weight matrix: gemv for a decode step (a few rows of activations) and gemm on
// tensor cores (any rows), each x @ W.T of a torch Linear weight W [n, k].
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec gemv_spec();
KernelSpec gemm_spec();
KernelSpec gemm_bias_spec();
KernelSpec gemm_residual_spec();

// Outputs of tensor-core products over K of up to ~16K O(1) terms (sums of about sqrt(K) / 2),
// rounded once to the 16-bit output type, the f32 sums taken in another order than the float64
// reference's. max_abs is half a step of the type at outputs below 256 (0.5 in bf16, 1/16 in f16)
// and half that again for the f32 sums' own error where the rounding is already half a step: at
// K = 4096 outputs pass 64, where the rounding alone comes to 0.25 in bf16 (the H100 bench saw
// 0.2502); at K = 14336 they pass 128 (the H200 bench saw 0.5025). rel_l2 is the binding check at
// every K.
inline std::map<ScalarType, Tolerance> matrix_tolerances() {
  return {{ScalarType::bf16, {1e-2, 0.75}}, {ScalarType::f16, {2e-3, 0.09375}}};
}
}  // namespace mtile::lib
