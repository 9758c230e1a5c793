// The CPU engine: executes lowered IR exactly as docs/IR.md defines it. Each threadgroup runs in
// lockstep over the structured IR with a per-thread activity mask (so barriers and simd ops see
// exactly which threads take part); threadgroups are spread over host threads.
#pragma once
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/registry.hpp"

namespace mtile::cpu {

struct TensorView {
  void* data = nullptr;
  ScalarType elem = ScalarType::f32;
  uint64_t count = 0;
};

struct EngineOptions {
  unsigned threads = 0;  // host threads; 0 = hardware concurrency
};

// Runs `f` (no Call or threadgroup_reduce left) over the grid. `tensors` and `constexprs` have one
// entry per parameter. Throws Error naming the kernel, the threadgroup and thread on any fault:
// out-of-bounds access, integer division by zero, divergent barrier or simd operation.
void execute(const ir::Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
             const std::vector<uint32_t>& constexprs, const EngineOptions& opts = {});

}  // namespace mtile::cpu
