// The examples family (kernels/examples): each kernel shows the construct docs/writing-kernels.md
// says it shows, and what that construct promises holds on the CPU engine. (Every registered
// kernel is also checked against its reference by kernels_test, compiled by NVRTC and checked as
// MSL by the codegen tests.)
#include <fmt/format.h>

#include <cmath>

#include "backends/cuda/nvrtc.hpp"
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;
using mtile::testing::error_of;

namespace {

int count(const ir::Function& f, const std::function<bool(const ir::Inst&)>& pred) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += pred(in) ? 1 : 0; });
  return n;
}
int count_op(const ir::Function& f, ir::Op op) {
  return count(f, [&](const ir::Inst& in) { return in.op == op; });
}

ir::Function traced(const std::string& kernel, ScalarType t = ScalarType::f32, const dsl::Config& c = {}) {
  const Kernel& k = find_kernel(kernel);
  Resolved r = resolve(k.spec(), k->example_shape, Target::cpu(), c);
  return k->def.trace(k->def.has_dtype(t) ? t : k->def.dtypes()[0], r.config);
}

// The kernel lowered for `target` at `shape` as a launch lowers it: Config from the rules,
// constexprs baked, u64 offsets for the tensors past 2^31 elements.
ir::Function lowered(const std::string& kernel, ScalarType t, const Shape& shape, const Target& target) {
  const Kernel& k = find_kernel(kernel);
  Resolved r = resolve(k.spec(), shape, target);
  passes::PipelineOptions o;
  o.bake = r.constexprs;
  o.wide = wide_tensors(r);
  return passes::run_pipeline(k->def.trace(t, r.config), target, o);
}

CheckResult check(const std::string& kernel, ScalarType t, const Shape& shape, CheckOptions opts = {}) {
  auto cpu = make_backend("cpu");
  return run_and_check(*cpu, find_kernel(kernel), t, shape, opts);
}

}  // namespace

TEST(Examples, TheFamilyHasAKernelForEachConstruct) {
  std::vector<std::string> names;
  for (const Kernel& k : kernels())
    if (k->family == "examples") names.push_back(k.name());
  EXPECT_EQ(names, (std::vector<std::string>{
                       "example_masked_scale", "example_scale_rows", "example_scale_bias", "example_histogram",
                       "example_scan_rows", "example_mish", "example_dequant_fp8", "example_convert", "example_q_scale",
                       "example_transpose", "example_row_rms", "example_mma", "example_reverse_rows"}));
}

TEST(Examples, MaskedScaleMasksItsLoadsAndStores) {
  ir::Function f = traced("example_masked_scale");
  EXPECT_EQ(count(f, [](const ir::Inst& in) { return in.op == ir::Op::Load && in.args.size() == 3; }), 4)
      << ir::print(f);
  EXPECT_EQ(count(f, [](const ir::Inst& in) { return in.op == ir::Op::Store && in.args.size() == 3; }), 4);
  // n = 6: the second thread's last two elements are past the tensors' end; the engine would
  // report any access to them, and y's 6 elements are all written.
  CheckResult r = check("example_masked_scale", ScalarType::f32, {{"n", 6}});
  EXPECT_TRUE(r.passed) << r.summary();
}

TEST(Examples, ScaleRowsUsesVectorAccessesAndTheContractChecksTheirAlignment) {
  ir::Function f = traced("example_scale_rows");
  EXPECT_EQ(count(f, [](const ir::Inst& in) { return in.op == ir::Op::LoadVector && in.lanes == 4; }), 2)
      << ir::print(f);
  EXPECT_EQ(count(f, [](const ir::Inst& in) { return in.op == ir::Op::StoreVector && in.lanes == 4; }), 1);
  std::string cuda = codegen::emit_cuda(
      lowered("example_scale_rows", ScalarType::bf16, {{"rows", 2}, {"n", 64}}, Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "reinterpret_cast<const uint2*>")) << cuda;  // 4 bf16 in one 8-byte load
  std::string m = error_of([] { check("example_scale_rows", ScalarType::f32, {{"rows", 2}, {"n", 6}}); });
  EXPECT_TRUE(contains(m, "kernel example_scale_rows: contract violated") && contains(m, "n % 4 == 0 (n = 6)")) << m;
}

TEST(Examples, ScaleBiasTakesAScalarAndGets64BitOffsetsOnlyWhereATensorPasses2To31AndNvrtcCompilesThem) {
  ir::Function f = traced("example_scale_bias");
  int scale = f.param_index("scale");
  ASSERT_GE(scale, 0);
  EXPECT_EQ(f.params[scale].kind, ir::ParamKind::Scalar);
  EXPECT_EQ(f.params[scale].elem, ScalarType::f32);
  // The value passed with the launch is the one the kernel uses: y = 3x + b.
  CheckOptions opts;
  opts.launch.scalars = {{"scale", 3.0}};
  opts.keep_outputs = true;
  CheckResult r = check("example_scale_bias", ScalarType::f32, {{"rows", 2}, {"n", 100}}, opts);
  EXPECT_TRUE(r.passed) << r.summary();
  auto u64_lines = [](const ir::Function& g) {
    return count(g, [](const ir::Inst& in) { return in.type == ScalarType::u64; });
  };
  const Target cuda = Target::cuda("sm_90a");
  ir::Function small = lowered("example_scale_bias", ScalarType::bf16, {{"rows", 64}, {"n", 4096}}, cuda);
  ir::Function huge = lowered("example_scale_bias", ScalarType::bf16, {{"rows", 600000}, {"n", 8192}}, cuda);
  EXPECT_EQ(u64_lines(small), 0) << ir::print(small);
  EXPECT_GT(u64_lines(huge), 0) << ir::print(huge);
  std::string src = codegen::emit_cuda(huge);
  EXPECT_TRUE(contains(src, "unsigned long long")) << src;
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  EXPECT_GT(cuda::nvrtc_compile(src, "example_scale_bias_wide.cu", "sm_90a").cubin.size(), 0u);
}

TEST(Examples, HistogramCountsWithAtomicsInBothMemories) {
  ir::Function f = traced("example_histogram", ScalarType::u32);
  EXPECT_EQ(
      count(f, [](const ir::Inst& in) { return in.op == ir::Op::Atomic && in.space == ir::MemSpace::Threadgroup; }), 1);
  EXPECT_EQ(count(f, [](const ir::Inst& in) { return in.op == ir::Op::Atomic && in.space == ir::MemSpace::Device; }),
            1);
  // Every value in bin 3 (48 / 16), from many threadgroups: the count is exact.
  CheckOptions opts;
  opts.keep_outputs = true;
  const Kernel& k = find_kernel("example_histogram");
  KernelSpec s = k.spec();
  s.inits = {{"values", Init::constant(48)}, {"bins", Init::constant(0)}};
  Kernel same_values = make_kernel(std::move(s));
  auto cpu = make_backend("cpu");
  CheckResult r = run_and_check(*cpu, same_values, ScalarType::u32, {{"n", 5000}}, opts);
  ASSERT_TRUE(r.passed) << r.summary();
  ASSERT_EQ(r.output_values.size(), 1u);
  EXPECT_EQ(r.output_values[0][3], 5000.0);
  EXPECT_EQ(r.output_values[0][2], 0.0);
}

TEST(Examples, ScanRowsLeavesItsLoopEarlyAndEndsThreadsPastTheLastRow) {
  ir::Function f = traced("example_scan_rows");
  // while_ is a loop whose first instruction leaves it when the condition fails: two breaks.
  std::map<ir::Op, int> want = {{ir::Op::Loop, 1}, {ir::Op::Break, 2}, {ir::Op::Continue, 1}, {ir::Op::Return, 1}};
  for (auto [op, n] : want) EXPECT_EQ(count_op(f, op), n) << ir::op_name(op) << "\n" << ir::print(f);
  // Its offsets are u64 values of its own, so a launch past 2^32 elements lowers (no u32 local
  // in an index for widen_indices to refuse).
  EXPECT_NO_THROW(lowered("example_scan_rows", ScalarType::f32, {{"rows", 70000}, {"n", 70000}}, Target::cpu()));
  // 70 rows, 64 threads a threadgroup: the second threadgroup's last 58 threads return at once.
  CheckOptions opts;
  opts.keep_outputs = true;
  CheckResult r = check("example_scan_rows", ScalarType::f32, {{"rows", 70}, {"n", 40}}, opts);
  ASSERT_TRUE(r.passed) << r.summary();
  // With x uniform in [-1, 1] and limit 0.9, most rows stop before their end (a break).
  int stopped = 0;
  for (double first : r.output_values[0]) stopped += first < 40;
  EXPECT_GT(stopped, 35);
}

TEST(Examples, MishHandlesLargeAndNanInputs) {
  ir::Function f = passes::run_pipeline(traced("example_mish"), Target::cpu());
  for (ir::Op op : {ir::Op::Log1p, ir::Op::Exp, ir::Op::Tanh, ir::Op::IsNan}) EXPECT_EQ(count_op(f, op), 1);
  std::vector<float> x = {0.0f, 1.0f, -3.0f, 25.0f, 100.0f, -100.0f, NAN, 1e-4f}, y(x.size(), -1.0f);
  mtile::testing::run_f32(f, mtile::testing::geometry(1, 256), {&x, &y}, {0, 0, x.size()});
  for (size_t i = 0; i < x.size(); ++i) {
    double v = x[i];
    double want = std::isnan(v) ? 0.0 : v * std::tanh(v > 20 ? v : std::log1p(std::exp(v)));
    EXPECT_NEAR(y[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << "x = " << x[i];
  }
  EXPECT_EQ(y[4], 100.0f);  // exp(100) overflows f32; the softplus branch keeps it finite
}

TEST(Examples, DequantReadsFp8) {
  ir::Function f = traced("example_dequant_fp8", ScalarType::bf16);
  EXPECT_EQ(f.params[f.param_index("q")].elem, ScalarType::f8e4m3);
  EXPECT_EQ(f.params[f.param_index("y")].elem, ScalarType::bf16);
  CheckResult r = check("example_dequant_fp8", ScalarType::f16, {{"n", 3000}});
  EXPECT_TRUE(r.passed) << r.summary();
}

TEST(Examples, ConvertHasAVariantForEveryPairOfFloatTypes) {
  const Kernel& k = find_kernel("example_convert");
  for (ScalarType in : {ScalarType::f32, ScalarType::f16, ScalarType::bf16}) {
    for (ScalarType out : {ScalarType::f32, ScalarType::f16, ScalarType::bf16}) {
      SCOPED_TRACE(fmt::format("{} -> {}", type_name(in), type_name(out)));
      ir::Function f = k->def.trace(in, {{"out_dtype", dsl::type_code(out)}, {"threads", 256}});
      EXPECT_EQ(f.params[f.param_index("x")].elem, in);
      EXPECT_EQ(f.params[f.param_index("y")].elem, out);
      CheckOptions opts;
      opts.launch.config = {{"out_dtype", dsl::type_code(out)}};
      CheckResult r = check("example_convert", in, {{"n", 5000}}, opts);
      EXPECT_TRUE(r.passed) << r.summary();
      EXPECT_EQ(r.outputs.at(0).max_abs, 0.0) << "rounded once, as the reference rounds";
    }
  }
  // A type code it has no variant for.
  CheckOptions opts;
  opts.launch.config = {{"out_dtype", dsl::type_code(ScalarType::u8)}};
  std::string m = error_of([&] { check("example_convert", ScalarType::f16, {{"n", 10}}, opts); });
  EXPECT_TRUE(
      contains(m, "kernel example_convert<f16>: no variant with out_dtype = u8 (for f16 it has: f16, f32, bf16)"))
      << m;
}

TEST(Examples, QScaleReadsASliceOfAFusedProjectionThroughItsStrides) {
  ir::Function f = traced("example_q_scale");
  ASSERT_EQ(f.params.size(), 5u);
  EXPECT_EQ(f.params[1].name, "qkv_stride0");
  EXPECT_EQ(f.params[2].name, "qkv_stride1");
  const Kernel& k = find_kernel("example_q_scale");
  Resolved r = resolve(k.spec(), {{"rows", 3}, {"n", 10}}, Target::cpu());
  EXPECT_EQ(r.constexprs.at("qkv_stride0"), 30u);
  EXPECT_EQ(r.constexprs.at("qkv_stride1"), 1u);
  // Constexprs passed at launch rather than baked: the strides are launch arguments.
  CheckOptions opts;
  opts.launch.bake_constexprs = false;
  EXPECT_TRUE(check("example_q_scale", ScalarType::bf16, {{"rows", 3}, {"n", 10}}, opts).passed);
}

TEST(Examples, TransposeSizesItsTwoDimensionalArrayFromTheConfig) {
  for (uint32_t tile : {8u, 16u, 32u}) {
    ir::Function f = traced("example_transpose", ScalarType::f32, {{"tile", tile}});
    std::vector<uint64_t> sizes;
    ir::for_each_inst(f.body, [&](const ir::Inst& in) {
      if (in.op == ir::Op::TgArrayDecl) sizes.push_back(in.bits);
    });
    EXPECT_EQ(sizes, std::vector<uint64_t>{tile * (tile + 1)});
    CheckOptions opts;
    opts.launch.config = {{"tile", tile}};
    CheckResult r = check("example_transpose", ScalarType::bf16, {{"rows", 37}, {"cols", 70}}, opts);
    EXPECT_TRUE(r.passed) << r.summary();
    EXPECT_EQ(r.geometry.tpg, tile * tile);
  }
  CheckOptions opts;
  opts.launch.config = {{"tile", 12}};
  std::string m = error_of([&] { check("example_transpose", ScalarType::f32, {{"rows", 4}, {"cols", 4}}, opts); });
  EXPECT_TRUE(contains(m, "tile == 8 || tile == 16 || tile == 32")) << m;
}

TEST(Examples, RowRmsKeepsItsNamesInEveryLanguage) {
  ir::Function f = passes::run_pipeline(traced("example_row_rms"), Target::cuda("sm_90a"));
  std::string ir_text = ir::print(f), cuda = codegen::emit_cuda(f);
  std::string msl = codegen::emit_msl(passes::run_pipeline(traced("example_row_rms"), Target::metal("apple9")));
  for (const std::string* text : {&ir_text, &cuda, &msl})
    for (const char* name : {"row", "ssq", "total"}) EXPECT_TRUE(contains(*text, name)) << name << " in:\n" << *text;
  EXPECT_TRUE(contains(cuda, "float ssq")) << cuda;
}

TEST(Examples, MmaMultipliesOnTensorCoresWithMaskedEdgesInEveryLanguage) {
  ir::Function f = traced("example_mma", ScalarType::bf16);
  EXPECT_EQ(count_op(f, ir::Op::Mma), 1) << ir::print(f);
  // Any m and n: the edge tiles read 0 and write nothing outside c (the engine would report an
  // access past a tensor, and an unwritten element of c fails the check).
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (const Shape& shape : std::vector<Shape>{{{"m", 17}, {"n", 9}, {"k", 32}}, {{"m", 1}, {"n", 1}, {"k", 16}}}) {
      CheckResult r = check("example_mma", t, shape);
      EXPECT_TRUE(r.passed) << r.summary();
    }
  auto cpu = make_backend("cpu:sanitize");
  CheckResult r = run_and_check(*cpu, find_kernel("example_mma"), ScalarType::f16, {{"m", 20}, {"n", 12}, {"k", 32}});
  EXPECT_TRUE(r.passed) << r.summary();
  const Shape shape = {{"m", 40}, {"n", 24}, {"k", 64}};
  std::string cuda = codegen::emit_cuda(lowered("example_mma", ScalarType::bf16, shape, Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")) << cuda;
  EXPECT_TRUE(contains(cuda, "= mt_mma_m16n8k16_bf16(")) << cuda;
  std::string msl = codegen::emit_msl(lowered("example_mma", ScalarType::f16, shape, Target::metal("apple9")));
  EXPECT_TRUE(contains(msl, "simdgroup_multiply_accumulate")) << msl;
  EXPECT_TRUE(contains(msl, "= mt_mma_m16n8k16(")) << msl;
  std::string m = error_of([] { check("example_mma", ScalarType::bf16, {{"m", 16}, {"n", 8}, {"k", 24}}); });
  EXPECT_TRUE(contains(m, "kernel example_mma: contract violated") && contains(m, "k % 16 == 0 (k = 24)")) << m;
  std::string f32 = error_of([] { find_kernel("example_mma")->def.trace(ScalarType::f32); });
  EXPECT_TRUE(contains(f32, "example_mma")) << f32;
}

TEST(Examples, ReverseRowsStagesItsRowsWithAsyncCopies) {
  for (ScalarType t : {ScalarType::f32, ScalarType::bf16}) {
    ir::Function f = traced("example_reverse_rows", t);
    uint32_t lanes = t == ScalarType::f32 ? 4 : 8;  // 16 bytes a copy
    EXPECT_EQ(count(f, [&](const ir::Inst& in) { return in.op == ir::Op::CopyAsync && in.lanes == lanes; }), 1)
        << ir::print(f);
    EXPECT_EQ(count_op(f, ir::Op::CopyAsyncCommit), 1);
    EXPECT_EQ(count_op(f, ir::Op::CopyAsyncWait), 1);
    auto cpu = make_backend("cpu:sanitize");
    CheckResult r = run_and_check(*cpu, find_kernel("example_reverse_rows"), t, {{"rows", 3}, {"n", 200}});
    EXPECT_TRUE(r.passed) << r.summary();
  }
  const Shape shape = {{"rows", 4}, {"n", 1024}};
  std::string cuda =
      codegen::emit_cuda(lowered("example_reverse_rows", ScalarType::bf16, shape, Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "mt_copy_async<16>(")) << cuda;
  EXPECT_TRUE(contains(cuda, "cp.async.wait_group")) << cuda;
  std::string m = error_of([] { check("example_reverse_rows", ScalarType::f32, {{"rows", 2}, {"n", 100}}); });
  EXPECT_TRUE(contains(m, "n % 8 == 0 (n = 100)")) << m;
}
