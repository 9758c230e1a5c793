// Every registered kernel x dtype x test shape on the CPU engine, its sanitizer on, against its
// float64 reference, with random inputs and poisoned outputs (any unwritten element fails).
#include <fmt/format.h>

#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
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
  // With the sanitizer on: a race or a read of memory nothing wrote fails here too.
  auto cpu = make_backend("cpu:sanitize");
  for (uint64_t seed : {1u, 2u}) {
    CheckOptions opts;
    opts.seed = seed;
    CheckResult r = run_and_check(*cpu, find_kernel(c.kernel), c.dtype, c.shape, opts);
    ASSERT_FALSE(r.outputs.empty());
    for (const OutputCheck& o : r.outputs) {
      EXPECT_EQ(o.unwritten, 0u) << r.summary();
      EXPECT_EQ(o.nan + o.inf, 0u) << r.summary();
      EXPECT_LE(o.rel_l2, o.tolerance.rel_l2) << r.summary();
      EXPECT_LE(o.max_abs, o.tolerance.max_abs) << r.summary();
      EXPECT_LE(o.max_steps, o.tolerance.max_steps) << r.summary();
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
      // With the Config its rules choose for its example shape, as a launch traces it.
      dsl::Config config = resolve(k.spec(), k->example_shape, Target::cpu()).config;
      EXPECT_NO_THROW(passes::run_pipeline(k->def.trace(t, config), Target::cpu())) << k.name();
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

// y[i] = x[i] except y[3] = 0 / 0 (NaN) and y[5], never written.
void holes(dsl::In<dsl::f32> x, dsl::Out<dsl::f32> y) {
  using namespace dsl;
  Val i = tid();
  if_(
      i == 3u, [&] { store(y[i], lit(0.0f) / lit(0.0f)); }, [&] { if_(i != 5u, [&] { store(y[i], load(x[i])); }); });
}

TEST(Kernels, HarnessReportsNaNAndUnwrittenElementsApart) {
  using rule::var;
  KernelSpec s;
  s.def = dsl::define_kernel("holes", ir::Mode::Reduction, {"x", "y"}, &holes);
  s.dims = {"n"};
  s.dispatch = {.grid = 1, .tpg = var("n")};
  s.sizes = {{"x", var("n")}, {"y", var("n")}};
  s.reference = [](const Shape&, HostTensors& t) { t["y"] = t["x"]; };
  s.tolerance = spec::float_tolerances();
  s.test_shapes = {{{"n", 32}}};
  Kernel k = make_kernel(std::move(s));
  auto cpu = make_backend("cpu");
  CheckResult r = run_and_check(*cpu, k, ScalarType::f32, {{"n", 32}});
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].nan, 1u) << r.summary();
  EXPECT_EQ(r.outputs[0].unwritten, 1u) << r.summary();
  EXPECT_EQ(r.outputs[0].rel_l2, 0.0) << "the other 30 elements are exact";
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(mtile::testing::contains(r.summary(), "UNWRITTEN 1 NaN 1")) << r.summary();
}

TEST(Kernels, InPlaceKernelsAreCheckedOnTheirFirstLaunch) {
  // Timed launches after the check run add_rms_norm again on its own output; the check must not see them.
  auto cpu = make_backend("cpu");
  CheckOptions opts;
  opts.timed_runs = 3;
  CheckResult r = run_and_check(*cpu, find_kernel("add_rms_norm"), ScalarType::f32, {{"rows", 3}, {"n", 300}}, opts);
  EXPECT_TRUE(r.passed) << r.summary();
  EXPECT_EQ(r.outputs.size(), 2u);
  EXPECT_EQ(r.timed_runs, 3);
}

}  // namespace
