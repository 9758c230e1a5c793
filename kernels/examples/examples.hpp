// The examples family: one short kernel for each construct docs/writing-kernels.md teaches
// (masked memory, explicit vectors, scalar arguments, 64-bit offsets, atomics, loops with early
// exits, math, memory types, two-type kernels, strided tensors, threadgroup arrays, names, matrix
// multiply-accumulate, asynchronous copies). They are registered like every library kernel, so CI
// checks each on the CPU engine, compiles its CUDA with NVRTC and its MSL with the shim, and the
// doc's snippets are checked against these files.
#pragma once
#include <vector>

#include "kernels/spec_helpers.hpp"
#include "mtile/registry.hpp"

namespace mtile::lib {

// 1-D kernels over n elements, `per_thread` a thread: `threads` a threadgroup (256), as many
// threadgroups along x as cover n, none along y or z; the contract pins all of it.
inline void elementwise_contract(KernelSpec& k, uint32_t per_thread = 1) {
  using rule::var;
  rule::Expr n = var("n");
  k.dims = {"n"};
  k.config = {{"threads", 256}};
  rule::Expr covered = per_thread == 1 ? var("threads") : var("threads") * per_thread;  // elements a threadgroup
  k.dispatch = {.grid = rule::ceil_div(n, covered), .tpg = var("threads")};
  k.preconditions = {n >= 1, var("tpg") == var("threads"), var("grid") == rule::ceil_div(n, covered),
                     var("grid_y") == 1, var("grid_z") == 1};
}

std::vector<KernelSpec> example_specs();

KernelSpec example_masked_scale_spec();
KernelSpec example_scale_rows_spec();
KernelSpec example_scale_bias_spec();
KernelSpec example_histogram_spec();
KernelSpec example_scan_rows_spec();
KernelSpec example_mish_spec();
KernelSpec example_dequant_fp8_spec();
KernelSpec example_convert_spec();
KernelSpec example_q_scale_spec();
KernelSpec example_transpose_spec();
KernelSpec example_row_rms_spec();
KernelSpec example_mma_spec();
KernelSpec example_reverse_rows_spec();

}  // namespace mtile::lib
