// The norm family: RMSNorm in its forms, and LayerNorm. mt_rms_inv_scalar is a standalone kernel and the shared callee
// of the others.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {

const dsl::KernelDef& mt_rms_inv_scalar_def();

KernelSpec mt_rms_inv_scalar_spec();
KernelSpec mt_rms_norm_spec();
KernelSpec ffai_rms_norm_residual_spec();
KernelSpec mt_rms_norm_small_spec();
KernelSpec mt_rms_norm_wide_spec();
KernelSpec rms_norm_residual_spec();
KernelSpec add_rms_norm_spec();
KernelSpec rms_norm_spec();
KernelSpec gemma_rms_norm_spec();
KernelSpec gemma_add_rms_norm_spec();
KernelSpec add_rms_norm_unrounded_spec();
KernelSpec add_rms_norm_quant_fp8_spec();
KernelSpec rms_norm_per_head_spec();
KernelSpec layer_norm_spec();
KernelSpec layer_norm_no_bias_spec();

// The contract, inputs, tolerances and test shapes of the strided norm kernels.
enum class NormForm;
KernelSpec strided_norm_spec(dsl::KernelDef def, std::string summary, NormForm form);

}  // namespace mtile::lib
