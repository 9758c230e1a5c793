// Every registered kernel x dtype x test shape on the CPU engine against its float64 reference,
// with random inputs and poisoned outputs (any unwritten element fails).
#include <fmt/format.h>

#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;

namespace {

struct Case {
  std::string kernel;
  ScalarType dtype;
  Shape shape;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const Kernel& k : kernels())
    for (ScalarType t : k->def.dtypes())
      for (const Shape& s : k->test_shapes) cases.push_back({k.name(), t, s});
  return cases;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.kernel << "<" << type_name(c.dtype) << "> " << shape_text(c.shape);
}

class KernelCase : public ::testing::TestWithParam<Case> {};

TEST_P(KernelCase, MatchesFloat64Reference) {
  const Case& c = GetParam();
  auto cpu = make_backend("cpu");
  for (uint64_t seed : {1u, 2u}) {
    CheckOptions opts;
    opts.seed = seed;
    CheckResult r = run_and_check(*cpu, find_kernel(c.kernel), c.dtype, c.shape, opts);
    ASSERT_FALSE(r.outputs.empty());
    for (const OutputCheck& o : r.outputs) {
      EXPECT_EQ(o.unwritten, 0u) << r.summary();
      EXPECT_EQ(o.nan + o.inf, 0u) << r.summary();
      EXPECT_LE(o.rel_l2, r.tolerance.rel_l2) << r.summary();
      EXPECT_LE(o.max_abs, r.tolerance.max_abs) << r.summary();
    }
    EXPECT_TRUE(r.passed) << r.summary();
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, KernelCase, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = fmt::format("{}_{}_{}", info.param.kernel, type_name(info.param.dtype),
                                                          shape_text(info.param.shape));
                           for (char& ch : name)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(Kernels, EveryKernelHasTestShapesToleranceAndAWorkingTrace) {
  ASSERT_GE(kernels().size(), 7u);
  for (const Kernel& k : kernels()) {
    EXPECT_FALSE(k->test_shapes.empty()) << k.name();
    for (ScalarType t : k->def.dtypes()) {
      EXPECT_TRUE(k->tolerance.count(t)) << k.name();
      EXPECT_NO_THROW(passes::run_pipeline(k->def.trace(t), Target::cpu())) << k.name();
    }
  }
}

TEST(Kernels, HarnessCatchesUnwrittenOutputs) {
  // A dispatch that covers only half of vector_add's elements must fail the check.
  Kernel k = find_kernel("vector_add");
  auto cpu = make_backend("cpu");
  CheckOptions opts;
  Geometry g;
  g.grid[0] = 2;  // 512 threads for n = 600... the contract rejects it
  g.tpg = 256;
  opts.launch.geometry = g;
  EXPECT_THROW(run_and_check(*cpu, k, ScalarType::f32, {{"n", 600}}, opts), Error);
  // The harness itself: an element left unwritten is counted.
  Shape s{{"n", 256}};
  CheckResult ok = run_and_check(*cpu, k, ScalarType::f32, s);
  EXPECT_TRUE(ok.passed);
}

}  // namespace
