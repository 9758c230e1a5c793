// Misuse of the DSL's issue-8 constructs is refused with a message naming the kernel, the
// parameter and the rule: strided layouts that reach past their buffer or are missing, threadgroup
// arrays sized by a traced value, type codes that name no type.
#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// out[r, c] = x(r, c) for an x of any layout the spec gives.
void strided_copy(Strided<In<f32>, 2> x, Out<f32> out, Constexpr n) {
  for_(tid(), n, lsize(), [&](Val c) { store(out[program_id(0) * n + c], load(x(program_id(0), c))); });
}

KernelSpec strided_spec(rule::Expr x_size, std::map<std::string, StridedLayout> layouts) {
  using rule::var;
  KernelSpec k;
  k.def = define_kernel("strided_copy", ir::Mode::Elementwise, {"x", "out", "n"}, &strided_copy);
  k.dims = {"rows", "n"};
  k.dispatch = {.grid = var("rows"), .tpg = 32};
  k.preconditions = spec::one_threadgroup_per_row();
  k.sizes = {{"x", x_size}, {"out", var("rows") * var("n")}};
  k.strided = std::move(layouts);
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = spec::dim(s, "rows"), n = spec::dim(s, "n");
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < n; ++c) t["out"][r * n + c] = t["x"][r * 2 * n + c];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"rows", 2}, {"n", 8}}};
  return k;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StridedTensors, ALayoutInsideItsBufferRuns) {
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  Kernel k = make_kernel(strided_spec(rows * 2 * n, {{"x", {.shape = {rows, n}, .strides = {2 * n, 1}}}}));
  auto cpu = make_backend("cpu");
  CheckResult r = run_and_check(*cpu, k, ScalarType::f32, {{"rows", 3}, {"n", 50}});
  EXPECT_TRUE(r.passed) << r.summary();
}

TEST(StridedTensors, ASliceThatStartsMidRowIsTheAddressOfItsFirstElement) {
  // The k and v parts of a fused QKV projection (rows of 3n: q, k, v): as torch's data_ptr() of
  // such a slice, the caller passes the address of its first element; the sizes rule is the
  // slice's extent from there, (rows - 1) * 3n + n, which the contract checks the layout against.
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  Kernel k = make_kernel(strided_spec((rows - 1) * 3 * n + n, {{"x", {.shape = {rows, n}, .strides = {3 * n, 1}}}}));
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  const uint32_t r = 3, cols = 40;
  std::vector<float> qkv(r * 3 * cols);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = 0.5f * static_cast<float>(i) - 7.0f;
  for (uint32_t part : {1u, 2u}) {             // k, v
    std::vector<float> out(r * cols, -1e30f);  // poisoned
    uint64_t first = part * cols;
    Buffer x = cpu.wrap(reinterpret_cast<uint64_t>(qkv.data() + first), ScalarType::f32, qkv.size() - first);
    Buffer o = cpu.wrap(reinterpret_cast<uint64_t>(out.data()), ScalarType::f32, out.size());
    Stream s = cpu.default_stream();
    LaunchOptions opts;
    opts.stream = &s;
    ctx.launch(cpu, k, ScalarType::f32, {{"rows", r}, {"n", cols}}, {&x, nullptr, nullptr, &o, nullptr}, opts);
    for (uint32_t row = 0; row < r; ++row)
      for (uint32_t c = 0; c < cols; ++c)
        ASSERT_EQ(out[row * cols + c], qkv[row * 3 * cols + first + c]) << "part " << part << " row " << row;
    cpu.release(x);
    cpu.release(o);
  }
}

TEST(StridedTensors, TheContractRefusesStridesThatReachPastTheBufferOrAreZero) {
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  auto cpu = make_backend("cpu");
  // Row stride 2n over a buffer of rows * n: row 1 already starts past half of it.
  Kernel past = make_kernel(strided_spec(rows * n, {{"x", {.shape = {rows, n}, .strides = {2 * n, 1}}}}));
  std::string m = error_of([&] { run_and_check(*cpu, past, ScalarType::f32, {{"rows", 3}, {"n", 10}}); });
  for (const char* part : {"kernel strided_copy: contract violated", "every element of strided 'x' in its buffer",
                           "shape [rows, n] = [3, 10]", "strides [2 * n, 1] = [20, 1]", "reaches element 49",
                           "'x' has 30 elements (rows * n)", "Nothing was launched"})
    EXPECT_TRUE(contains(m, part)) << part << " in: " << m;
  Kernel zero = make_kernel(strided_spec(rows * 2 * n, {{"x", {.shape = {rows, n}, .strides = {2 * n, 0}}}}));
  m = error_of([&] { run_and_check(*cpu, zero, ScalarType::f32, {{"rows", 3}, {"n", 10}}); });
  EXPECT_TRUE(contains(m, "stride 1 of 'x' >= 1 (x_stride1 = 0 = 0)")) << m;
}

TEST(StridedTensors, TheSpecMustGiveEachStridedTensorItsLayout) {
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  std::string m = error_of([&] { make_kernel(strided_spec(rows * 2 * n, {})); });
  EXPECT_TRUE(contains(m, "kernel strided_copy: spec field 'strided': Strided tensor 'x' has no layout")) << m;
  m = error_of([&] { make_kernel(strided_spec(rows * 2 * n, {{"x", {.shape = {rows}, .strides = {n}}}})); });
  EXPECT_TRUE(contains(m, "'x' has 2 axes; its layout gives 1 extents and 1 strides")) << m;
  m = error_of([&] {
    make_kernel(strided_spec(rows * 2 * n, {{"x", {.shape = {rows, n}, .strides = {2 * n, 1}}},
                                            {"out", {.shape = {rows}, .strides = {1}}}}));
  });
  EXPECT_TRUE(contains(m, "'out' is not a Strided tensor parameter")) << m;
  m = error_of([&] {
    make_kernel(strided_spec(rows * 2 * n, {{"x", {.shape = {rows, var("m")}, .strides = {n, 1}}}}));
  });
  EXPECT_TRUE(contains(m, "the shape of strided 'x'") && contains(m, "'m'")) << m;
}

namespace {
void tg_sized_by_constexpr(In<f32> x, Out<f32> y, Constexpr n) {
  TgArray a = threadgroup_array<f32>(n);
  store(a[tid()], load(x[tid()]));
  barrier();
  store(y[tid()], load(a[tid()]));
}
void tg_2d(In<f32> x, Out<f32> y) {
  TgArray2D a = threadgroup_array<f32>(4, 8);  // 4 rows of 8
  store(a(tid() / 8u, tid() % 8u), load(x[tid()]));
  barrier();
  store(y[tid()], load(a(tid() % 4u, tid() / 4u)));  // read column-major
}
void type_from_config(In<f32> x, Out<f32> y) {
  store(y[tid()], load(x[tid()]).cast(config_type("out")));
}
}  // namespace

TEST(ThreadgroupArrays, SizedByATracedValueIsATraceErrorThatSaysWhatToUse) {
  std::string m = error_of([] {
    define_kernel("tg_sized_by_constexpr", ir::Mode::Elementwise, {"x", "y", "n"}, &tg_sized_by_constexpr)
        .trace(ScalarType::f32);
  });
  for (const char* part : {"kernel tg_sized_by_constexpr", "dsl_constructs_test.cpp",
                           "threadgroup_array sized by a traced value", "config(\"rows\")"})
    EXPECT_TRUE(contains(m, part)) << part << " in: " << m;
}

TEST(ThreadgroupArrays, TwoDimensionalArraysAreRowMajor) {
  ir::Function f = passes::run_pipeline(
      define_kernel("tg_2d", ir::Mode::Elementwise, {"x", "y"}, &tg_2d).trace(ScalarType::f32), Target::cpu());
  std::vector<float> x(32), y(32, -1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  mtile::testing::run_f32(f, mtile::testing::geometry(1, 32), {&x, &y});
  for (uint32_t t = 0; t < 32; ++t) EXPECT_EQ(y[t], x[(t % 4) * 8 + t / 4]) << t;
}

TEST(TwoTypeKernels, AConfigValueThatIsNoTypeIsATraceError) {
  KernelDef def = define_kernel("type_from_config", ir::Mode::Elementwise, {"x", "y"}, &type_from_config);
  EXPECT_EQ(def.trace(ScalarType::f32, {{"out", type_code(ScalarType::f32)}}).params.size(), 2u);
  std::string m = error_of([&] { def.trace(ScalarType::f32, {{"out", 99}}); });
  EXPECT_TRUE(contains(m, "config('out') = 99 is no type code (codes: u32 = 0, i32 = 1, f32 = 2")) << m;
}
