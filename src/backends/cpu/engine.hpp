// The CPU engine: executes lowered IR exactly as docs/IR.md defines it. Each threadgroup runs in
// lockstep over the structured IR with a per-thread activity mask (so barriers and simd ops see
// exactly which threads take part); threadgroups are spread over host threads.
#pragma once
#include <cstdint>
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"

namespace mtile::cpu {

struct TensorView {
  void* data = nullptr;
  ScalarType elem = ScalarType::f32;
  uint64_t count = 0;
  bool output = false;  // an Out tensor: with `sanitize`, reading an element before it is written is a fault
};

struct EngineOptions {
  unsigned threads = 0;  // host threads; 0 = hardware concurrency
  // Loop iterations one threadgroup may run (every for and loop together) before the run stops
  // with a "runaway loop" fault.
  uint64_t loop_budget = kDefaultLoopBudget;
  // The sanitizer (docs/reliability.md): races on threadgroup memory between two barriers, reads
  // of threadgroup memory no thread wrote, reads of Out tensors before they are written. Lockstep
  // execution alone would hide the races: a GPU runs the threads in any order.
  bool sanitize = false;
};

// Runs `f` (no Call or threadgroup_reduce left) over the grid. `tensors` and `values` have one
// entry per parameter: `values` holds the bits of constexpr and scalar parameters. Throws Error
// naming the kernel, the threadgroup and thread on any fault: out-of-bounds access, integer
// division by zero, divergent barrier or simd operation, a runaway loop, and with `sanitize` the
// faults above.
void execute(const ir::Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
             const std::vector<uint64_t>& values, const EngineOptions& opts = {});

}  // namespace mtile::cpu
