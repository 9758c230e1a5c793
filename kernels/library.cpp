// The standard library, in the order `mtile list` shows it.
#include "kernels/activation/activation.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/collective/collective.hpp"
#include "kernels/elementwise/elementwise.hpp"
#include "kernels/examples/examples.hpp"
#include "kernels/linear/linear.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/reduce/reduce.hpp"
#include "kernels/rope/rope.hpp"
#include "kernels/softmax/softmax.hpp"
#include "registry/standard_library.hpp"

namespace mtile::lib {

std::vector<KernelSpec> standard_library() {
  std::vector<KernelSpec> all = {
      // MetalTile's kernels and the first strided ones
      mt_rms_inv_scalar_spec(), mt_rms_norm_spec(), ffai_rms_norm_residual_spec(), mt_rms_norm_small_spec(),
      mt_rms_norm_wide_spec(), rms_norm_residual_spec(), add_rms_norm_spec(), softmax_spec(), vector_add_spec(),
      // norms
      rms_norm_spec(), gemma_rms_norm_spec(), gemma_add_rms_norm_spec(), add_rms_norm_unrounded_spec(),
      add_rms_norm_quant_fp8_spec(), rms_norm_per_head_spec(), layer_norm_spec(), layer_norm_no_bias_spec(),
      // rotary embeddings
      rope_spec(), rope_interleaved_spec(), rms_norm_rope_spec(),
      // softmax
      softmax_masked_spec(), logsumexp_spec(),
      // activations and elementwise
      silu_mul_spec(), gelu_spec(), gelu_tanh_spec(), add_spec(), mul_spec(),
      // reductions
      argmax_spec(), top_k_spec(), histogram_spec(),
      // decoding, matrix products and prefill attention
      gemv_spec(), attention_decode_spec(), gemm_spec(), gemm_bias_spec(), gemm_residual_spec(),
      attention_prefill_spec(),
      // tensor parallelism
      allreduce_add_rms_norm_spec()};
  for (KernelSpec& k : example_specs()) all.push_back(std::move(k));  // the DSL's examples, last
  return all;
}

}  // namespace mtile::lib
