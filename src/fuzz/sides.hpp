// The two ways a fuzzed program is run and compared: the CPU engine after the full pass pipeline
// against the engine after only the lowering it requires, or a GPU backend against the engine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/program.hpp"

namespace mtile::fuzz {

using Bytes = std::vector<uint8_t>;

// Initial contents of every parameter (tensors: bytes; constexprs: empty), drawn from the
// program's seed: small integers, special floats (NaN, infinities, -0, subnormals) and random
// bits. Outputs start as the same poison bytes on both sides.
std::vector<Bytes> make_inputs(const Program& p);

struct Outcome {
  std::string error;           // what the side threw; empty when it ran
  std::vector<Bytes> tensors;  // every parameter after the run
  std::string lowered;         // the IR it ran, printed
};

struct Side {
  std::string name;
  std::function<Outcome(const Program&, const ir::Function& traced, const std::vector<Bytes>& inputs)> run;
};

// passes::run_pipeline with the constexprs the program bakes baked, for the CPU engine, a CUDA GPU
// (sm_90a) or an Apple GPU (apple9) by the program's seed; the engine runs the result, which that
// target's code generator must print too (and NVRTC compile, with `nvrtc`).
Side engine_full_pipeline(bool nvrtc = false);
// Only what the engine requires: inline_calls and lower_threadgroup_reductions(f, 32).
Side engine_minimal_lowering();
// run_pipeline for the device's target, then CudaBackend::prepare and run (no disk cache).
// Throws Error saying why when CUDA can't be used here.
Side cuda_device(int ordinal = 0);

struct Difference {
  std::string text;  // the element and both values
  int param = -1;
  uint64_t index = 0;
};
// The first element where `a` and `b` differ; nullopt when they agree. Floats agree when their
// bits are equal or both are NaN; with `tolerant`, slots marked inexact agree within a few units
// in the last place of their type.
std::optional<Difference> first_difference(const Program& p, const Side& sa, const Outcome& a, const Side& sb,
                                           const Outcome& b, bool tolerant);

// One element of parameter `param` as text: "1.5 (0x3fc00000)".
std::string element_text(ScalarType t, const Bytes& data, uint64_t i);

}  // namespace mtile::fuzz
