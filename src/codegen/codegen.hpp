// Code generators: CUDA C++ (for NVRTC) and Metal Shading Language, from lowered IR.
//
// Input: a function after passes::run_pipeline (no Call, no threadgroup_reduce_*); ConstexprRef
// may remain. Both backends print through one C-family printer (c_printer.hpp) and keep the
// semantics of docs/IR.md, which the CPU engine executes.
#pragma once
#include <string>

#include "mtile/ir.hpp"

namespace mtile::codegen {

// The kernel's symbol in both languages: "<name>_<dtype>", e.g. "ffai_rms_norm_residual_bf16".
std::string cuda_entry_name(const ir::Function& f);

// One self-contained CUDA C++ translation unit (no #include) with an extern "C" __global__ entry
// taking every IR parameter in order: tensors as pointers, constexprs as unsigned int.
std::string emit_cuda(const ir::Function& f);

struct MslOptions {
  enum class Version { V3_0, V3_1 } version = Version::V3_1;  // 3.1 has the bfloat type
  // Pass every constexpr as `constant uint&` even where the code no longer reads it.
  bool constexprs_as_buffers = false;
};
// One MSL source; buffer index i is IR parameter i.
std::string emit_msl(const ir::Function& f, const MslOptions& opts = {});

}  // namespace mtile::codegen
