// Compiling a kernel by hand: the pass pipeline and the code generators, for tools and for
// looking at what a kernel becomes (`mtile emit` and `mtile inspect` are built on these).
// A launch (mtile/runtime.hpp) does all of this itself, cached in its Context.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/target.hpp"

namespace mtile {

namespace passes {

struct PipelineOptions {
  // Constexpr values to bake into the code (specialize_constexprs); others stay launch arguments.
  std::map<std::string, uint32_t> bake;
  // Tensors that may hold more than 2^31 elements: their offsets are computed in 64 bits
  // (widen_indices). Decided per launch from the shape, so small launches keep 32-bit math.
  std::set<std::string> wide;
  // Threads per threadgroup of every launch of the code (0: any). Known, it becomes a constant,
  // sizes the threadgroup reductions and bounds the registers NVRTC may use.
  uint32_t tpg = 0;
  // Run the verifier after every pass (on in debug and test builds and in the CLI).
  bool verify = true;
  // Called with the pass name and the IR after each step ("trace" first); used by `mtile inspect`.
  std::function<void(const std::string& pass, const ir::Function&)> after_each;
};

// Names of the passes in order, for `mtile inspect --pass`.
const std::vector<std::string>& pipeline_pass_names();
// Runs every pass in order for `target`. The result has no Call and no threadgroup_reduce_*
// instructions. A pass that leaves invalid IR is an InternalError naming the pass, with the IR.
ir::Function run_pipeline(const ir::Function& f, const Target& target, const PipelineOptions& opts = {});

}  // namespace passes

namespace codegen {

// The kernel's symbol in both languages: "<name>_<dtype>", e.g. "ffai_rms_norm_residual_bf16".
std::string cuda_entry_name(const ir::Function& f);

// One self-contained CUDA C++ translation unit (no #include) with an extern "C" __global__ entry
// taking every IR parameter in order: tensors as pointers, constexprs as unsigned int.
std::string emit_cuda(const ir::Function& f);

// Threadgroup memory past 48 KiB, what a CUDA block may declare statically, is declared dynamic:
// the launch must pass this many bytes as its shared memory (and the function allow them). 0
// where the arrays fit the static limit.
uint64_t cuda_dynamic_shared_bytes(const ir::Function& f);

struct MslOptions {
  // 3.1 has the bfloat type; 3.2 device-scope fences (atomic_thread_fence with thread_scope_device)
  // and coherent(device) buffers, which a kernel with a fence needs.
  enum class Version { V3_0, V3_1, V3_2 } version = Version::V3_1;
  // Pass every constexpr as `constant uint&` even where the code no longer reads it.
  bool constexprs_as_buffers = false;
};
// One MSL source; buffer index i is IR parameter i. The function must be lowered for a Metal
// target (no vector accesses). Throws Error naming the kernel when `opts.version` is older than
// msl_version_needed(f).
std::string emit_msl(const ir::Function& f, const MslOptions& opts = {});
// The oldest Metal version that can express `f`: 3.2 where it has a fence, else 3.0.
MslOptions::Version msl_version_needed(const ir::Function& f);
// "3.0", "3.1", "3.2".
const char* msl_version_name(MslOptions::Version v);

}  // namespace codegen

}  // namespace mtile
