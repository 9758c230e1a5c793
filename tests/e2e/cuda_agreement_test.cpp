// CUDA agrees with the CPU engine: every kernel x dtype x test shape, the same random inputs on
// both backends, outputs compared element by element within the kernel's tolerance.
// Skips (saying why) where no CUDA device can be opened.
#include <fmt/format.h>

#include <cmath>

#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;

TEST(CudaAgreesWithCpuEngine, EveryKernelDtypeAndTestShape) {
  std::unique_ptr<Backend> gpu;
  try {
    gpu = make_backend("cuda");
  } catch (const Error& e) {
    GTEST_SKIP() << "no CUDA device: " << e.what();
  }
  auto cpu = make_backend("cpu");
  int compared = 0;
  for (const Kernel& k : kernels()) {
    for (ScalarType t : k->def.dtypes()) {
      for (const Shape& s : k->test_shapes) {
        if (std::string why = ranks_unavailable(Context::global(), *gpu, k, s); !why.empty()) {
          std::printf("[ agreement] skipped %s %s: %s\n", k.name().c_str(), shape_text(s).c_str(), why.c_str());
          continue;
        }
        CheckOptions opts;
        opts.seed = 11;
        opts.keep_outputs = true;
        CheckResult a = run_and_check(*cpu, k, t, s, opts);
        CheckResult b = run_and_check(*gpu, k, t, s, opts);
        std::string what = fmt::format("{}<{}> {}", k.name(), type_name(t), shape_text(s));
        ASSERT_TRUE(a.passed) << what << ": cpu " << a.summary();
        ASSERT_TRUE(b.passed) << what << ": cuda " << b.summary();
        ASSERT_EQ(a.output_values.size(), b.output_values.size()) << what;
        for (size_t o = 0; o < a.output_values.size(); ++o) {
          const auto& x = a.output_values[o];
          const auto& y = b.output_values[o];
          ASSERT_EQ(x.size(), y.size()) << what;
          double diff2 = 0, ref2 = 0, max_abs = 0;
          for (size_t e = 0; e < x.size(); ++e) {
            diff2 += (x[e] - y[e]) * (x[e] - y[e]);
            ref2 += x[e] * x[e];
            max_abs = std::max(max_abs, std::fabs(x[e] - y[e]));
          }
          double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
          const Tolerance& tol = a.outputs[o].tolerance;  // the output's own, where it has one
          EXPECT_LE(rel, tol.rel_l2) << what << " " << a.outputs[o].param;
          EXPECT_LE(max_abs, tol.max_abs) << what << " " << a.outputs[o].param;
        }
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 50);
  std::printf("[ agreement] %d kernel x dtype x shape cases agree between cpu and cuda\n", compared);
}
