// The seed kernel, ffai_rms_norm_residual, against its float64 reference at the sizes the issue
// names, and mt_rms_inv_scalar standalone versus inlined.
#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;

TEST(SeedKernel, MatchesReferenceForEveryDtypeAndSize) {
  Kernel k = find_kernel("ffai_rms_norm_residual");
  auto cpu = make_backend("cpu");
  const std::map<ScalarType, double> bound = {
      {ScalarType::f32, 1e-5}, {ScalarType::f16, 5e-4}, {ScalarType::bf16, 4e-3}};
  for (auto [dtype, tol] : bound) {
    for (uint32_t n : {128u, 512u, 4096u}) {
      for (uint32_t rows : {1u, 5u, 33u}) {
        CheckResult r = run_and_check(*cpu, k, dtype, {{"rows", rows}, {"n", n}});
        ASSERT_EQ(r.outputs.size(), 1u);
        EXPECT_EQ(r.outputs[0].unwritten, 0u) << r.summary();
        EXPECT_LE(r.outputs[0].rel_l2, tol) << r.summary();
        EXPECT_GT(r.outputs[0].rel_l2, 0.0) << "suspiciously exact: " << r.summary();
        EXPECT_TRUE(r.passed) << r.summary();
      }
    }
  }
}

TEST(SeedKernel, RelativeErrorReflectsTheDtype) {
  // bf16 has 8 significant bits, f16 11, f32 24: the errors must be ordered that way.
  Kernel k = find_kernel("ffai_rms_norm_residual");
  auto cpu = make_backend("cpu");
  Shape s{{"rows", 8}, {"n", 1024}};
  double e32 = run_and_check(*cpu, k, ScalarType::f32, s).outputs[0].rel_l2;
  double e16 = run_and_check(*cpu, k, ScalarType::f16, s).outputs[0].rel_l2;
  double eb16 = run_and_check(*cpu, k, ScalarType::bf16, s).outputs[0].rel_l2;
  EXPECT_LT(e32, e16);
  EXPECT_LT(e16, eb16);
  EXPECT_LT(e32, 1e-6);
}
