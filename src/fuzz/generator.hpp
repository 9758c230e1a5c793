// The fuzzer's generator: random, well-typed kernels that are valid by construction (every index
// in bounds, every integer divisor nonzero, every barrier, simdgroup operation and threadgroup
// reduction in control flow that all threads of the threadgroup take, loops of a few trips).
#pragma once
#include <cstdint>

#include "fuzz/program.hpp"

namespace mtile::fuzz {

struct GenOptions {
  int max_stmts = 48;  // statements at most, nested ones included
  int max_depth = 3;   // of nested if/for
  // For comparing a GPU with the engine: values of transcendental functions (within 2 ulp on a
  // GPU, docs/IR.md) reach outputs only through moves (select, neg, abs, locals, shuffles,
  // threadgroup memory), never through arithmetic that could magnify their difference, and are
  // stored only in slots marked inexact.
  bool bounded_inexact = false;
};

// The same seed and options give the same program.
Program generate(uint64_t seed, const GenOptions& opts = {});

}  // namespace mtile::fuzz
