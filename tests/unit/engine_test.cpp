// CPU engine semantics, written so that a wrong engine fails: barriers order threadgroup memory,
// simd reductions and shuffles exchange between the right lanes, faults are reported.
#include <limits>

#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::geometry;
using mtile::testing::run_f32;

namespace {

ir::Function lowered(KernelDef def) {
  return passes::run_pipeline(def.trace(def.dtypes()[0]), Target::cpu());
}

std::string fault(const ir::Function& f, Geometry g, std::vector<std::vector<float>*> t) {
  try {
    run_f32(f, g, t);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Each thread writes its value to shared memory; after the barrier it reads the value of the
// thread at the mirrored position. Without a real barrier the late threads' values are missing.
void mirror(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(1024);
  Val base = program_id(0) * lsize();
  store(tile[tid()], load(x[base + tid()]));
  barrier();
  store(y[base + tid()], load(tile[lsize() - 1u - tid()]));
}

void simd_ops(In<f32> x, Out<f32> sum, Out<f32> mx, Out<f32> mn, Out<f32> xr, Out<f32> dn) {
  Val i = program_id(0) * lsize() + tid();
  Val v = load(x[i]);
  store(sum[i], simd_sum(v));
  store(mx[i], simd_max(v));
  store(mn[i], simd_min(v));
  store(xr[i], simd_shuffle_xor(v, 5u));
  store(dn[i], simd_shuffle_down(v, 3u));
}

void builtins(Out<f32> y) {
  Val i = program_id(0) * lsize() + tid();
  Val code = simd_group() * 1000u + simd_lane() + program_id(0) * 100000u + lsize() * 10000000u;
  store(y[i], code.cast<f32>());
}

// A barrier and a simd_sum under conditions on program_id, which the uniformity check accepts;
// threads_diverge() then makes them conditions on thread_id, as hand-built IR could be, to reach
// the engine's own checks behind the trace-time one.
void divergent_barrier(In<f32> x, Out<f32> y) {
  if_(program_id(0) < 16u, [&] { barrier(); });
  store(y[tid()], load(x[tid()]));
}
void divergent_simd(In<f32> x, Out<f32> y) {
  if_(program_id(0) < 16u, [&] { store(y[tid()], simd_sum(load(x[tid()]))); });
}
ir::Function threads_diverge(ir::Function f) {
  ir::for_each_inst(f.body, [](ir::Inst& in) {
    if (in.op == ir::Op::ProgramId) in.op = ir::Op::ThreadId;
  });
  return f;
}
void out_of_bounds(In<f32> x, Out<f32> y) {
  store(y[tid()], load(x[tid() + 1u]));
}
void div_by_zero(In<f32> x, Out<f32> y) {
  Val zero = tid() - tid();  // a u32 zero the folder cannot see through
  store(y[tid()], load(x[tid() / zero]));
}

void exp2_both(In<f32> x, Out<f32> exact, Out<f32> flushed) {
  Val v = load(x[tid()]);
  store(exact[tid()], exp2(v));
  store(flushed[tid()], exp2_ftz(v));
}

// Math in the value's type: f16 arithmetic rounds after every operation.
void f16_accumulate(In<f16> x, Out<f16> y) {
  Var acc(lit(ScalarType::f16, 0.0));
  for_(0u, 64u, 1u, [&](Val i) { acc = acc + load(x[i]); });
  store(y[0u], acc.get());
}

}  // namespace

TEST(Engine, BarrierOrdersThreadgroupMemory) {
  ir::Function f = lowered(define_kernel("mirror", ir::Mode::Reduction, {"x", "y"}, &mirror));
  for (uint32_t tpg : {32u, 256u, 1024u}) {
    std::vector<float> x(2 * tpg), y(2 * tpg, NAN);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + 0.5f;
    run_f32(f, geometry(2, tpg), {&x, &y});
    for (uint32_t g = 0; g < 2; ++g)
      for (uint32_t t = 0; t < tpg; ++t) ASSERT_EQ(y[g * tpg + t], x[g * tpg + tpg - 1 - t]) << "tpg " << tpg;
  }
}

TEST(Engine, SimdReductionsAndShufflesUseTheRightLanes) {
  ir::Function f =
      lowered(define_kernel("simd_ops", ir::Mode::Reduction, {"x", "sum", "mx", "mn", "xr", "dn"}, &simd_ops));
  const uint32_t tpg = 64, n = 2 * tpg;
  std::vector<float> x(n), sum(n, NAN), mx(n, NAN), mn(n, NAN), xr(n, NAN), dn(n, NAN);
  for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 7919) % 257) - 128.0f;
  run_f32(f, geometry(2, tpg), {&x, &sum, &mx, &mn, &xr, &dn});
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t base = i / 32 * 32, lane = i % 32;
    float s = 0, hi = -1e30f, lo = 1e30f;
    for (uint32_t l = 0; l < 32; ++l) {
      s += x[base + l];
      hi = std::max(hi, x[base + l]);
      lo = std::min(lo, x[base + l]);
    }
    EXPECT_EQ(sum[i], s) << i;
    EXPECT_EQ(mx[i], hi) << i;
    EXPECT_EQ(mn[i], lo) << i;
    EXPECT_EQ(xr[i], x[base + (lane ^ 5u)]) << i;
    EXPECT_EQ(dn[i], lane + 3 < 32 ? x[i + 3] : x[i]) << i;  // past the end: own value
  }
}

TEST(Engine, SimdSumOrderIsTheXorButterfly) {
  // Values whose f32 sum depends on the order: the engine must use the documented butterfly.
  ir::Function f =
      lowered(define_kernel("simd_ops", ir::Mode::Reduction, {"x", "sum", "mx", "mn", "xr", "dn"}, &simd_ops));
  std::vector<float> x(32), sum(32), mx(32), mn(32), xr(32), dn(32);
  for (uint32_t l = 0; l < 32; ++l) x[l] = l % 2 ? 1e8f : 1.0f + l;
  run_f32(f, geometry(1, 32), {&x, &sum, &mx, &mn, &xr, &dn});
  float cur[32];
  std::copy(x.begin(), x.end(), cur);
  for (uint32_t m = 16; m > 0; m /= 2) {
    float next[32];
    for (uint32_t l = 0; l < 32; ++l) next[l] = cur[l] + cur[l ^ m];
    std::copy(next, next + 32, cur);
  }
  for (uint32_t l = 0; l < 32; ++l) EXPECT_EQ(sum[l], cur[0]);
}

TEST(Engine, BuiltinsMatchTheirDefinitions) {
  ir::Function f = lowered(define_kernel("builtins", ir::Mode::Reduction, {"y"}, &builtins));
  const uint32_t tpg = 96, groups = 3;
  std::vector<float> y(tpg * groups, NAN);
  run_f32(f, geometry(groups, tpg), {&y});
  for (uint32_t g = 0; g < groups; ++g)
    for (uint32_t t = 0; t < tpg; ++t)
      EXPECT_EQ(y[g * tpg + t], static_cast<float>(t / 32 * 1000 + t % 32 + g * 100000 + tpg * 10000000u));
}

// exp2_ftz is exp2 with results below 2^-126 (f32's subnormals) flushed to +0 (docs/IR.md).
TEST(Engine, Exp2FtzFlushesSubnormalResults) {
  ir::Function f = lowered(define_kernel("exp2_both", ir::Mode::Reduction, {"x", "exact", "flushed"}, &exp2_both));
  std::vector<float> x = {-1.0f,   3.5f,      -126.0f,  -126.5f, -140.0f, -149.0f,
                          -200.0f, -INFINITY, INFINITY, NAN,     0.0f,    -1e-40f};
  x.resize(32, 0.25f);
  std::vector<float> exact(32, -1.0f), flushed(32, -1.0f);
  run_f32(f, geometry(1, 32), {&x, &exact, &flushed});
  for (size_t i = 0; i < x.size(); ++i) {
    float want = static_cast<float>(std::exp2(static_cast<double>(x[i])));  // as the engine: f64, rounded
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(exact[i]) && std::isnan(flushed[i])) << i;
      continue;
    }
    EXPECT_EQ(exact[i], want) << "exp2(" << x[i] << ")";
    EXPECT_EQ(flushed[i], want < std::numeric_limits<float>::min() ? 0.0f : want) << "exp2_ftz(" << x[i] << ")";
  }
  EXPECT_GT(exact[3], 0.0f);  // 2^-126.5 and 2^-140 are subnormal: kept by exp2, flushed by exp2_ftz
  EXPECT_EQ(flushed[3], 0.0f);
  EXPECT_EQ(flushed[4], 0.0f);
  EXPECT_EQ(flushed[2], std::numeric_limits<float>::min());  // 2^-126 itself is normal
}

TEST(Engine, ReportsDivergentBarrier) {
  ir::Function f =
      threads_diverge(lowered(define_kernel("divergent", ir::Mode::Reduction, {"x", "y"}, &divergent_barrier)));
  std::vector<float> x(64, 1.0f), y(64);
  std::string msg = fault(f, geometry(1, 64), {&x, &y});
  EXPECT_TRUE(contains(msg, "kernel divergent<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "barrier reached by 16 of 64 threads")) << msg;
}

TEST(Engine, ReportsPartialSimdgroup) {
  ir::Function f =
      threads_diverge(lowered(define_kernel("divergent_simd", ir::Mode::Reduction, {"x", "y"}, &divergent_simd)));
  std::vector<float> x(64, 1.0f), y(64);
  std::string msg = fault(f, geometry(1, 64), {&x, &y});
  EXPECT_TRUE(contains(msg, "simd_sum in simdgroup 0 with 16 of 32 lanes")) << msg;
}

TEST(Engine, ReportsOutOfBoundsWithThreadgroupAndThread) {
  ir::Function f = lowered(define_kernel("oob", ir::Mode::Reduction, {"x", "y"}, &out_of_bounds));
  std::vector<float> x(32, 1.0f), y(32);
  std::string msg = fault(f, geometry(1, 32), {&x, &y});
  EXPECT_TRUE(contains(msg, "load of 'x' at index 32 is out of bounds (32 elements)")) << msg;
  EXPECT_TRUE(contains(msg, "thread 31")) << msg;
}

TEST(Engine, ReportsIntegerDivisionByZero) {
  ir::Function f = lowered(define_kernel("div0", ir::Mode::Reduction, {"x", "y"}, &div_by_zero));
  std::vector<float> x(32, 1.0f), y(32);
  std::string msg = fault(f, geometry(1, 32), {&x, &y});
  EXPECT_TRUE(contains(msg, "integer div by zero")) << msg;
}

TEST(Engine, F16ArithmeticRoundsEveryStep) {
  ir::Function f = lowered(define_kernel("f16acc", ir::Mode::Reduction, {"x", "y"}, &f16_accumulate, ScalarType::f16));
  std::vector<uint16_t> x(64, f32_to_f16_bits(1.0f)), y(1, 0xffff);
  x[0] = f32_to_f16_bits(2048.0f);  // 2048 + 1 is not an f16: every +1 rounds back to 2048
  cpu::execute(f, geometry(1, 1), {{x.data(), ScalarType::f16, 64}, {y.data(), ScalarType::f16, 1}}, {0, 0});
  EXPECT_EQ(f16_bits_to_f32(y[0]), 2048.0f);
}

TEST(Engine, IsDeterministicAcrossRuns) {
  ir::Function f =
      lowered(define_kernel("simd_ops", ir::Mode::Reduction, {"x", "sum", "mx", "mn", "xr", "dn"}, &simd_ops));
  const uint32_t n = 32 * 64;
  std::vector<float> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = std::sin(static_cast<float>(i)) * 1000.0f;
  std::vector<float> a[5], b[5];
  for (auto* out : {a, b}) {
    for (int k = 0; k < 5; ++k) out[k].assign(n, NAN);
    run_f32(f, geometry(64, 32), {&x, &out[0], &out[1], &out[2], &out[3], &out[4]});
  }
  for (int k = 0; k < 5; ++k) EXPECT_EQ(a[k], b[k]);
}

// Vector accesses must start at a multiple of their lanes (docs/IR.md). vectorize_memory only
// forms aligned ones, so this one is built by hand: thread t loads x[t + 1 .. t + 2].
TEST(Engine, ReportsMisalignedVectorLoad) {
  ir::Function f;
  f.name = "misaligned";
  f.params = {{"x", ir::ParamKind::Tensor, ScalarType::f32, ir::Role::In},
              {"y", ir::ParamKind::Tensor, ScalarType::f32, ir::Role::Out}};
  auto add = [&](ir::Op op, std::vector<ir::Id> args, bool defines = true) -> ir::Inst& {
    ir::Inst in;
    in.op = op;
    in.type = op == ir::Op::ThreadId || op == ir::Op::Const || op == ir::Op::Add ? ScalarType::u32 : ScalarType::f32;
    in.args = std::move(args);
    if (defines) in.result = f.fresh_id();
    f.body.insts.push_back(in);
    return f.body.insts.back();
  };
  ir::Id tid = add(ir::Op::ThreadId, {}).result;
  ir::Inst& one = add(ir::Op::Const, {});
  one.bits = 1;
  ir::Id index = add(ir::Op::Add, {tid, one.result}).result;
  ir::Inst& v = add(ir::Op::LoadVector, {index});
  v.param = 0;
  v.lanes = 2;
  ir::Inst& e = add(ir::Op::Extract, {v.result});
  e.bits = 1;
  ir::Inst& st = add(ir::Op::Store, {tid, e.result}, false);
  st.param = 1;
  ir::verify(f);
  std::vector<float> x(64, 1.0f), y(32);
  std::string msg = fault(f, geometry(1, 32), {&x, &y});
  EXPECT_TRUE(contains(msg, "kernel misaligned<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "vector load of 'x' at index 1 is not a multiple of its 2 lanes")) << msg;
  EXPECT_TRUE(contains(msg, "thread 0")) << msg;
}
