// A violated dispatch contract fails with a message naming the kernel, the rule and the values,
// and nothing reaches the backend.
#include "counting_backend.hpp"
#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;
using mtile::testing::CountingBackend;

namespace {

std::string violation(const std::string& kernel, Shape shape, std::optional<uint32_t> tpg = {}) {
  CountingBackend b;
  CheckOptions opts;
  Kernel k = find_kernel(kernel);
  if (tpg) {
    Geometry g = resolve(k.spec(), shape, b.target()).geometry;
    g.tpg = *tpg;
    opts.launch.geometry = g;
  }
  std::string msg = "no error";
  try {
    run_and_check(b, k, k->def.dtypes().back(), shape, opts);
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_EQ(b.runs, 0) << "a violated contract reached the backend";
  EXPECT_EQ(b.allocs, 0) << "buffers were allocated before the contract was checked";
  EXPECT_EQ(b.prepares, 0) << "code was compiled before the contract was checked";
  return msg;
}

}  // namespace

TEST(Contract, RejectsRowLengthNotMultipleOf128) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 4}, {"n", 4000}});
  EXPECT_TRUE(contains(msg, "kernel ffai_rms_norm_residual: contract violated")) << msg;
  EXPECT_TRUE(contains(msg, "n % 128 == 0 (n = 4000)")) << msg;
  EXPECT_TRUE(contains(msg, "Nothing was launched")) << msg;
}

TEST(Contract, RejectsRowsLongerThan4096) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 2}, {"n", 8192}});
  EXPECT_TRUE(contains(msg, "n <= 4096 (n = 8192)")) << msg;
  EXPECT_TRUE(contains(msg, "tpg <= max_tpg (tpg = 2048, max_tpg = 1024)")) << msg;
}

TEST(Contract, RejectsHandMadeThreadgroupOf16) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 2}, {"n", 512}}, 16);
  EXPECT_TRUE(contains(msg, "tpg % 32 == 0 (tpg = 16)")) << msg;
  EXPECT_TRUE(contains(msg, "tpg * 4 == n (tpg = 16, n = 512)")) << msg;
}

TEST(Contract, RejectsUnknownAndMissingShapeNames) {
  EXPECT_TRUE(contains(violation("ffai_rms_norm_residual", {{"rows", 2}}), "lacks 'n'"));
  EXPECT_TRUE(contains(violation("vector_add", {{"n", 2}, {"m", 3}}), "has 'm', which it does not take"));
}

TEST(Contract, CheckedOnEveryLaunchNotOnlyInTheHarness) {
  CountingBackend b;
  Kernel k = find_kernel("mt_rms_norm");
  std::vector<Buffer> bufs;
  Shape bad{{"rows", 1}, {"n", 200}};
  EXPECT_THROW(launch(b, k, ScalarType::f32, bad, {nullptr, nullptr, nullptr, nullptr, nullptr}), Error);
  EXPECT_EQ(b.runs, 0);
}

TEST(Contract, BuffersMustBeLargeEnoughAndTyped) {
  CountingBackend b;
  Kernel k = find_kernel("vector_add");
  Buffer a = b.alloc(ScalarType::f32, 100), c = b.alloc(ScalarType::f32, 100), small = b.alloc(ScalarType::f32, 10);
  try {
    launch(b, k, ScalarType::f32, {{"n", 100}}, {&a, &small, &c, nullptr});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "buffer for 'b' has 10 elements, shape n=100 needs 100")) << e.what();
  }
  Buffer h = b.alloc(ScalarType::f16, 100);
  EXPECT_THROW(launch(b, k, ScalarType::f32, {{"n", 100}}, {&a, &h, &c, nullptr}), Error);
  EXPECT_EQ(b.runs, 0);
  for (Buffer* x : {&a, &c, &small, &h}) b.release(*x);
}

namespace {

// y = x * k for a u32 scalar k passed with each launch.
void scale_by(dsl::In<dsl::f32> x, dsl::Scalar<dsl::u32> k, dsl::Out<dsl::f32> y) {
  using namespace dsl;
  Val i = program_id(0) * lsize() + tid();
  store(y[i], load(x[i]) * k.cast<f32>());
}

Kernel scale_by_kernel() {
  using rule::var;
  KernelSpec k;
  k.def = dsl::define_kernel("scale_by", ir::Mode::Elementwise, {"x", "k", "y"}, &scale_by);
  k.dims = {"n"};
  k.dispatch = {.grid = rule::ceil_div(var("n"), 32), .tpg = 32};
  k.preconditions = {var("n") % 32 == 0, var("grid") * 32 == var("n"), var("grid_y") == 1, var("grid_z") == 1,
                     var("tpg") == 32};
  k.sizes = {{"x", var("n")}, {"y", var("n")}};
  k.reference = [](const Shape&, HostTensors& t) {
    for (size_t i = 0; i < t["x"].size(); ++i) t["y"][i] = t["x"][i] * t["k"][0];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 64}}};
  return make_kernel(std::move(k));
}

}  // namespace

TEST(Contract, ScalarsMustBeGivenKnownAndExact) {
  CountingBackend b;
  Kernel k = scale_by_kernel();
  const Shape s{{"n", 64}};
  Buffer x = b.alloc(ScalarType::f32, 64), y = b.alloc(ScalarType::f32, 64);
  auto refusal = [&](std::map<std::string, double> scalars) {
    LaunchOptions o;
    o.scalars = std::move(scalars);
    try {
      launch(b, k, ScalarType::f32, s, {&x, nullptr, &y}, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("ran");
  };
  EXPECT_TRUE(contains(refusal({}), "kernel scale_by: no value for scalar 'k'")) << refusal({});
  EXPECT_TRUE(contains(refusal({{"k", 2.5}}), "kernel scale_by: scalar 'k' is u32, and 2.5 is not one"))
      << refusal({{"k", 2.5}});
  EXPECT_TRUE(contains(refusal({{"k", -1}}), "scalar 'k' is u32, and -1 is not one")) << refusal({{"k", -1}});
  EXPECT_TRUE(contains(refusal({{"k", 4294967296.0}}), "scalar 'k' is u32")) << refusal({{"k", 4294967296.0}});
  EXPECT_TRUE(contains(refusal({{"k", 3}, {"j", 1}}), "kernel scale_by: it has no scalar parameter 'j'"))
      << refusal({{"k", 3}, {"j", 1}});
  EXPECT_EQ(b.runs, 0);
  // Given right, it runs: y = 3 x.
  std::vector<float> xs(64), ys(64);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i) - 10.0f;
  b.upload(x, xs.data());
  EXPECT_EQ(refusal({{"k", 3}}), "ran");
  b.download(y, ys.data());
  for (size_t i = 0; i < ys.size(); ++i) EXPECT_EQ(ys[i], 3.0f * xs[i]) << i;
  EXPECT_EQ(b.runs, 1);
  b.release(x);
  b.release(y);
}
