// Explicit vectors (load_n, store_n): their IR, split_vector_accesses for each target's widest
// access (results identical on the CPU engine whichever target the code was lowered for), the
// launch-time alignment contract, the MSL and NVRTC spellings, and fold_constants' reassociation
// that lets vectorize_memory group every spelling of an offset index.
#include "backends/cuda/nvrtc.hpp"
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

int count_ops(const ir::Function& f, ir::Op op, int lanes = 0) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += in.op == op && (lanes == 0 || in.lanes == lanes); });
  return n;
}

// Eight f32 a thread: one 32-byte vector in the IR, two 16-byte ones on CUDA, scalars on Metal.
void scale8(In<f32> x, Out<f32> y) {
  Val b = tid() * 8u;
  Vec v = load_n<8>(x, b);
  store_n<8>(y, b, {v[7], v[6], v[5], v[4], v[3] * 2.0f, v[2], v[1], v[0]});
}

// Widening load: f16 lanes read as f32; the f16 store takes f16 values.
void widen4(In<f16> x, Out<f16> y) {
  Val b = tid() * 4u;
  Vec v = load_n<4, f32>(x, b);
  store_n<4>(y, b, {cast<f16>(v[0] + v[1]), cast<f16>(v[1]), cast<f16>(v[2] * v[3]), cast<f16>(v[3])});
}

// 64-bit elements: two a thread, a 16-byte access on CUDA.
void pair64(In<u64> x, Out<u64> y) {
  Val b = tid() * 2u;
  Vec v = load_n<2>(x, b);
  store_n<2>(y, b, {v[1], v[0] + lit(uint64_t{1})});
}

// Rows of n elements: aligned only where n is a multiple of 4.
void rows4(In<f32> x, Out<f32> y, Constexpr n) {
  Val b = program_id(0) * n + tid() * 4u;
  store_n<4>(y, b, load_n<4>(x, b));
}
// The same with the last 4 elements of each row read by every thread past them: min and max keep
// what both operands are multiples of.
void clamped4(In<f32> x, Out<f32> y, Constexpr n) {
  Val row = program_id(0) * n, b = row + tid() * 4u;
  if_(tid() * 4u < n, [&] { store_n<4>(y, b, load_n<4>(x, row + max(min(tid() * 4u, n - 4u), lit(0u)))); });
}

ir::Function lower(const KernelDef& def, const Target& t) {
  return passes::run_pipeline(def.trace(def.dtypes()[0]), t);
}

std::string trace_error(const std::function<void()>& body) {
  static std::function<void()> current;
  current = body;
  auto fn = +[](In<u8> a, In<f32> x, Out<f32> y) {
    (void)a, (void)x, (void)y;
    current();
  };
  try {
    define_kernel("bad", ir::Mode::Reduction, {"a", "x", "y"}, fn).trace(ScalarType::f32);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ExplicitVectors, TraceToOneVectorAccessAndItsLanes) {
  ir::Function f = define_kernel("scale8", ir::Mode::Reduction, {"x", "y"}, &scale8).trace(ScalarType::f32);
  EXPECT_EQ(count_ops(f, ir::Op::LoadVector, 8), 1) << ir::print(f);
  EXPECT_EQ(count_ops(f, ir::Op::Extract), 8);
  EXPECT_EQ(count_ops(f, ir::Op::StoreVector, 8), 1);
  EXPECT_EQ(count_ops(f, ir::Op::Load), 0);
  std::string text = ir::print(f);
  EXPECT_TRUE(contains(text, "load x[") && contains(text, "] x8 : f32")) << text;
}

TEST(ExplicitVectors, SplitToEachTargetsWidestAccess) {
  KernelDef def = define_kernel("scale8", ir::Mode::Reduction, {"x", "y"}, &scale8);
  ir::Function cpu = lower(def, Target::cpu());  // 16 bytes: two 4-lane f32 accesses each way
  EXPECT_EQ(count_ops(cpu, ir::Op::LoadVector, 4), 2) << ir::print(cpu);
  EXPECT_EQ(count_ops(cpu, ir::Op::StoreVector, 4), 2);
  EXPECT_EQ(count_ops(cpu, ir::Op::LoadVector, 8) + count_ops(cpu, ir::Op::StoreVector, 8), 0);
  ir::Function metal = lower(def, Target::metal("apple9"));  // none: eight scalar accesses each way
  EXPECT_EQ(count_ops(metal, ir::Op::LoadVector) + count_ops(metal, ir::Op::StoreVector), 0) << ir::print(metal);
  EXPECT_EQ(count_ops(metal, ir::Op::Extract), 0);
  EXPECT_EQ(count_ops(metal, ir::Op::Load), 8);
  EXPECT_EQ(count_ops(metal, ir::Op::Store), 8);
  // 8 f16 are 16 bytes: one access on the CPU engine's target.
  ir::Function h = lower(define_kernel("widen4", ir::Mode::Reduction, {"x", "y"}, &widen4), Target::cpu());
  EXPECT_EQ(count_ops(h, ir::Op::LoadVector, 4), 1) << ir::print(h);
}

TEST(ExplicitVectors, EveryTargetsLoweringComputesTheSameBits) {
  KernelDef def = define_kernel("scale8", ir::Mode::Reduction, {"x", "y"}, &scale8);
  const uint32_t threads = 64;
  std::vector<float> x(threads * 8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i) - 17.0f;
  std::vector<std::vector<float>> outs;
  for (const Target& t : {Target::cpu(), Target::metal("apple9"), Target::cuda("sm_90a")}) {
    std::vector<float> y(x.size(), -1.0f);
    mtile::testing::run_f32(lower(def, t), mtile::testing::geometry(1, threads), {&x, &y});
    outs.push_back(y);
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
  EXPECT_EQ(outs[0][0], x[7]);
  EXPECT_EQ(outs[0][4], x[3] * 2.0f);
}

TEST(ExplicitVectors, MslPrintsScalarAccessesAndNvrtcCompilesTheVectors) {
  for (auto* fn : {&scale8}) {
    KernelDef def = define_kernel("scale8", ir::Mode::Reduction, {"x", "y"}, fn);
    std::string msl = codegen::emit_msl(lower(def, Target::metal("apple9")));
    EXPECT_TRUE(contains(msl, "y[")) << msl;
  }
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  for (const KernelDef& def : {define_kernel("scale8", ir::Mode::Reduction, {"x", "y"}, &scale8),
                               define_kernel("widen4", ir::Mode::Reduction, {"x", "y"}, &widen4),
                               define_kernel("pair64", ir::Mode::Reduction, {"x", "y"}, &pair64)}) {
    ir::Function f = lower(def, Target::cuda("sm_90a"));
    std::string src = codegen::emit_cuda(f);
    EXPECT_TRUE(contains(src, "reinterpret_cast")) << src;
    cuda::NvrtcResult r = cuda::nvrtc_compile(src, def.name() + ".cu", "sm_90a");
    EXPECT_GT(r.cubin.size(), 0u) << def.name();
  }
}

namespace {
// A kernel that copies rows x n of x to y, a threadgroup a row of `tpg` threads.
Kernel copy_rows(const char* name, void (*fn)(In<f32>, Out<f32>, Constexpr), const rule::Expr& tpg) {
  using rule::var;
  KernelSpec s;
  s.def = define_kernel(name, ir::Mode::Reduction, {"x", "y", "n"}, fn);
  s.dims = {"rows", "n"};
  s.dispatch = {.grid = var("rows"), .tpg = tpg};
  s.sizes = {{"x", var("rows") * var("n")}, {"y", var("rows") * var("n")}};
  s.reference = [](const Shape&, HostTensors& t) { t["y"] = t["x"]; };
  s.tolerance = spec::float_tolerances();
  s.test_shapes = {{{"rows", 3}, {"n", 8}}};
  return make_kernel(std::move(s));
}
}  // namespace

TEST(ExplicitVectors, LaunchRefusesABaseNotProvablyAMultipleOfN) {
  Kernel k = copy_rows("rows4", &rows4, rule::var("n") / 4);
  auto cpu = make_backend("cpu");
  for (bool bake : {true, false}) {
    CheckOptions opts;
    opts.launch.bake_constexprs = bake;
    EXPECT_TRUE(run_and_check(*cpu, k, ScalarType::f32, {{"rows", 3}, {"n", 8}}, opts).passed);
    try {
      run_and_check(*cpu, k, ScalarType::f32, {{"rows", 3}, {"n", 12 + 2}}, opts);
      ADD_FAILURE() << "n = 14 puts row 1 at element 14, not a multiple of 4";
    } catch (const Error& e) {
      std::string m = e.what();
      for (const char* part : {"kernel rows4: contract violated", "load_n of 4 elements of 'x'",
                               "store_n of 4 elements of 'y'", "program_id.x * n", "n = 14",
                               "not provably a multiple of 4", "explicit_vectors_test.cpp", "Nothing was launched"})
        EXPECT_TRUE(contains(m, part)) << part << " in: " << m;
    }
  }
}

TEST(ExplicitVectors, AClampedBaseIsAMultipleWhereBothBoundsAre) {
  // Two threads past the row read its end.
  Kernel k = copy_rows("clamped4", &clamped4, rule::var("n") / 4 + 2);
  auto cpu = make_backend("cpu");
  EXPECT_TRUE(run_and_check(*cpu, k, ScalarType::f32, {{"rows", 3}, {"n", 8}}).passed);
  try {
    run_and_check(*cpu, k, ScalarType::f32, {{"rows", 3}, {"n", 14}});
    ADD_FAILURE() << "n = 14: n - 4 is not a multiple of 4";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "not provably a multiple of 4")) << e.what();
    EXPECT_TRUE(contains(e.what(), "min(")) << e.what();
  }
}

TEST(ExplicitVectors, TraceErrors) {
  EXPECT_TRUE(contains(trace_error([] {
                         load_n<4>(Tensor{0, ScalarType::u8, ir::Role::In}, tid() * 4u);
                       }),
                       "load_n<4> of 'a', a tensor of u8: vector accesses take tensors of u32"));
  EXPECT_TRUE(contains(trace_error([] {
                         store_n<2>(Tensor{2, ScalarType::f32, ir::Role::Out}, tid() * 2u, {lit(1.0f)});
                       }),
                       "store_n<2> to 'y' with 1 values (it stores exactly 2)"));
  EXPECT_TRUE(contains(trace_error([] {
                         store_n<2>(Tensor{1, ScalarType::f32, ir::Role::In}, tid() * 2u, {lit(1.0f), lit(2.0f)});
                       }),
                       "store_n to 'x', which is an input"));
  EXPECT_TRUE(contains(trace_error([] {
                         (void)load_n<2>(Tensor{1, ScalarType::f32, ir::Role::In}, tid())[2];
                       }),
                       "lane 2 of a 2-lane vector"));
  EXPECT_TRUE(contains(trace_error([] {
                         store_n<2>(Tensor{2, ScalarType::f32, ir::Role::Out}, tid() * 2u, {lit(1u), lit(2u)});
                       }),
                       "store_n to 'y' of f32: value 0 is u32"));
}

// The vectorizer cliff: both spellings of base + c + k give the same groups.
namespace {
void nested_offsets(In<f32> x, Out<f32> y) {
  Val base = program_id(0) * 64u, c = tid() * 4u;
  for (uint32_t k = 0; k < 4; ++k) store(y[base + (c + k)], load(x[base + (c + k)]) * 2.0f);
}
void outer_offsets(In<f32> x, Out<f32> y) {
  Val base = program_id(0) * 64u, c = tid() * 4u;
  for (uint32_t k = 0; k < 4; ++k) store(y[(base + c) + k], load(x[(base + c) + k]) * 2.0f);
}
void split_offsets(In<f32> x, Out<f32> y) {  // (base + 1) + (c + 2): constants on both sides
  Val base = program_id(0) * 64u, c = tid() * 4u;
  for (uint32_t k = 0; k < 4; k += 2) {
    store(y[(base + k) + c], load(x[(base + k) + c]));
    store(y[(base + 1u) + (c + k)], load(x[(base + 1u) + (c + k)]));
  }
}
}  // namespace

TEST(VectorizeMemory, GroupsEverySpellingOfAnOffsetIndexTheSame) {
  auto vectors = [](const ir::Function& f) {
    return count_ops(f, ir::Op::LoadVector, 4) + count_ops(f, ir::Op::StoreVector, 4);
  };
  ir::Function nested = lower(define_kernel("nested", ir::Mode::Reduction, {"x", "y"}, &nested_offsets), Target::cpu());
  ir::Function outer = lower(define_kernel("outer", ir::Mode::Reduction, {"x", "y"}, &outer_offsets), Target::cpu());
  ir::Function split = lower(define_kernel("split", ir::Mode::Reduction, {"x", "y"}, &split_offsets), Target::cpu());
  EXPECT_EQ(vectors(outer), 2) << ir::print(outer);
  EXPECT_EQ(vectors(nested), vectors(outer)) << ir::print(nested);
  EXPECT_EQ(vectors(split), 2) << ir::print(split);
  EXPECT_EQ(count_ops(nested, ir::Op::Load) + count_ops(nested, ir::Op::Store), 0);
  // And the same result: y = 2x on the lanes it covers.
  std::vector<float> x(256), a(256, 0.0f), b(256, 0.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
  mtile::testing::run_f32(nested, mtile::testing::geometry(2, 16), {&x, &a});
  mtile::testing::run_f32(outer, mtile::testing::geometry(2, 16), {&x, &b});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[70], 70.0f);
}

TEST(FoldConstants, HoistsConstantsOutOfIntegerSums) {
  auto sum = +[](In<u32> x, Out<u32> y) {
    Val a = tid(), b = program_id(0);
    store(y[tid()], load(x[(a + 1u) + (b + 2u)]) + ((a + 3u) + 4u));
  };
  ir::Function f =
      passes::fold_constants(define_kernel("sum", ir::Mode::Reduction, {"x", "y"}, sum).trace(ScalarType::f32));
  ir::verify(f);
  std::string text = ir::print(f);
  EXPECT_TRUE(contains(text, "const 3 : u32")) << text;  // (a + 1) + (b + 2) -> (a + b) + 3
  EXPECT_TRUE(contains(text, "const 7 : u32")) << text;  // (a + 3) + 4 -> a + 7
  std::vector<float> dummy;
  std::vector<uint32_t> xs(64), ys(32, 0), ys_ref(32, 0);
  for (uint32_t i = 0; i < 64; ++i) xs[i] = i * 10u;
  auto run = [&](const ir::Function& g, std::vector<uint32_t>& y) {
    cpu::execute(g, mtile::testing::geometry(1, 32),
                 {{xs.data(), ScalarType::u32, xs.size()}, {y.data(), ScalarType::u32, y.size()}}, {0, 0});
  };
  run(f, ys);
  run(passes::run_pipeline(define_kernel("sum", ir::Mode::Reduction, {"x", "y"}, sum).trace(ScalarType::f32),
                           Target::cpu()),
      ys_ref);
  EXPECT_EQ(ys, ys_ref);
  EXPECT_EQ(ys[5], (5u + 1u + 2u) * 10u + 5u + 7u);
}
