// The correctness harness: random inputs, poisoned outputs, one launch, and a comparison with the
// kernel's float64 reference; then, if asked, timed launches. Drives `mtile run`, `mtile test`,
// `mtile bench` and the kernel tests.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "mtile/runtime.hpp"

namespace mtile {

struct OutputCheck {
  std::string param;
  double rel_l2 = 0;       // ||out - ref|| / ||ref|| over the finite elements
  double max_abs = 0;      // max |out - ref| over the finite elements
  uint64_t unwritten = 0;  // elements still holding the poison pattern (Out tensors)
  uint64_t nan = 0;        // NaN the kernel wrote
  uint64_t inf = 0;        // infinities the kernel wrote
  // Largest distance in representable values of the element type between an element and its
  // reference rounded to that type (Tolerance::max_steps).
  uint64_t max_steps = 0;
  Tolerance tolerance{};  // what it was checked against: the kernel's, or its output_tolerance
  bool passed = false;
};

struct CheckResult {
  std::string kernel;
  ScalarType dtype = ScalarType::f32;
  Shape shape;
  Config config;
  std::string backend;
  Geometry geometry;
  std::vector<OutputCheck> outputs;                // one per Out and InOut tensor, checked after the first launch
  std::vector<std::vector<double>> output_values;  // with CheckOptions::keep_outputs, per output
  Tolerance tolerance{};  // the kernel's for this dtype (an output may have its own: OutputCheck::tolerance)
  bool passed = false;
  double first_seconds = 0;  // wall clock of the checked launch (compile excluded, synchronize included)
  double seconds = 0;        // median of the timed launches, or first_seconds when none
  int timed_runs = 0;
  uint64_t bytes = 0;  // the kernel's minimal traffic
  uint64_t flops = 0;
  std::string summary() const;  // one line: errors per output, tolerance, pass/fail, time
};

struct CheckOptions {
  uint64_t seed = 1;
  int timed_runs = 0;   // launches timed after the check (Backend::measure_ms each); 0: none
  int warmup_runs = 0;  // untimed launches between the check and the timed ones
  // Measures one timed launch (`launch` runs it on the checked buffers) in milliseconds; by default
  // Backend::measure_ms. `mtile bench` replaces it to flush the L2 cache first, or to replay a
  // CUDA graph of launches.
  std::function<double(const std::function<void()>& launch)> measure_ms;
  bool keep_outputs = false;  // copy each output's values into CheckResult::output_values
  LaunchOptions launch;
};

// Plans the launch (the contract is checked before anything is allocated), fills inputs (rounded
// to their dtype, InOut tensors too), poisons Out tensors with a signalling-NaN pattern no
// arithmetic produces, launches once, and compares every Out and InOut tensor but the spec's
// scratch with the reference: unwritten elements, NaN and infinities each fail. Then the timed
// launches. A collective kernel (KernelSpec::symmetric) runs on every rank at once (the CPU
// engine's simulated ranks, or CUDA devices 0..ranks - 1), and its timed launches are the wall
// clock until the last rank is done (measure_ms is not used).
CheckResult run_and_check(Context& ctx, Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts = {});
// The same on Context::global().
CheckResult run_and_check(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts = {});

// Why run_and_check can't run a collective kernel on `backend` at `shape` ("" when it can): CUDA
// runs one rank a device, and fewer devices than ranks open here. `mtile test`, `mtile bench` and
// the CPU/CUDA agreement test skip such a case with this reason.
std::string ranks_unavailable(Context& ctx, Backend& backend, const Kernel& k, const Shape& shape);

// The kernel's minimal traffic and work for a launch: its bytes rule, else every tensor once
// (InOut twice) at its element size; its flops rule, else 0.
uint64_t traffic_bytes(const LaunchPlan& plan);
uint64_t work_flops(const LaunchPlan& plan);

}  // namespace mtile
