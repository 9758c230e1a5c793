// The correctness harness: random inputs, poisoned outputs, a run, and a comparison with the
// kernel's float64 reference. Drives `mtile run`, `mtile test` and the kernel tests.
#pragma once
#include <string>
#include <vector>

#include "mtile/runtime.hpp"

namespace mtile {

struct OutputCheck {
  std::string param;
  double rel_l2 = 0;       // ||out - ref|| / ||ref||
  double max_abs = 0;      // max |out - ref|
  uint64_t unwritten = 0;  // elements still holding the poison pattern
  uint64_t non_finite = 0;
};

struct CheckResult {
  std::string kernel;
  ScalarType dtype = ScalarType::f32;
  Shape shape;
  std::string backend;
  Geometry geometry;
  std::vector<OutputCheck> outputs;
  std::vector<std::vector<double>> output_values;  // with CheckOptions::keep_outputs, per output
  Tolerance tolerance{};
  bool passed = false;
  double seconds = 0;           // the launch's time: median of the timed runs, else one wall-clock run
  uint64_t bytes = 0;           // the kernel's minimal traffic
  std::string summary() const;  // one line: errors, tolerance, pass/fail, time
};

struct CheckOptions {
  uint64_t seed = 1;
  int timed_runs = 0;
  bool keep_outputs = false;  // copy each output's values into CheckResult::output_values  // > 0: after the check, time this many launches (Backend::measure_ms)
  LaunchOptions launch;
};

// Fills inputs (rounded to their dtype), poisons outputs with all-ones bytes (NaN in every float
// type), launches, and compares every output with the reference. Contract errors propagate.
CheckResult run_and_check(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts = {});

}  // namespace mtile
