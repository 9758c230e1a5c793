// Mma and async copies (docs/IR.md): the fragment layout against PTX's tables, the CPU engine's
// product against a float64 one on random fragments, the verifier's and the DSL's refusals, the
// uniformity rule, what the passes may not do with them, and what CUDA and Metal print.
#include <fmt/format.h>

#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "mtile/dsl_matrix.hpp"
#include "passes/divisibility.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::geometry;
using mtile::testing::half_bits;
using mtile::testing::half_value;

namespace {

namespace L = mma_layout;

// PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type", written out as its tables
// say it (not with mma_layout's formulas): groupID = lane >> 2, threadID_in_group = lane % 4.
struct Coord {
  uint32_t row, col;
};
Coord ptx_a(uint32_t lane, uint32_t i) {
  uint32_t g = lane >> 2, t = lane % 4;
  bool low_row = i < 2 || (i >= 4 && i < 6);  // "row = groupID for ai where 0 <= i < 2 || 4 <= i < 6"
  return {low_row ? g : g + 8, i < 4 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8};
}
Coord ptx_b(uint32_t lane, uint32_t i) {  // {k, n}
  uint32_t g = lane >> 2, t = lane % 4;
  return {i < 2 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8, g};
}
Coord ptx_c(uint32_t lane, uint32_t i) {
  uint32_t g = lane >> 2, t = lane % 4;
  return {i < 2 ? g : g + 8, t * 2 + (i & 1)};
}

TEST(MmaLayout, IsPtxsFragmentLayoutAndHoldsEveryElementOnce) {
  std::vector<int> a(16 * 16, 0), b(16 * 8, 0), c(16 * 8, 0);
  for (uint32_t lane = 0; lane < 32; ++lane) {
    for (uint32_t i = 0; i < L::kAElements; ++i) {
      Coord p = ptx_a(lane, i);
      EXPECT_EQ(L::a_row(lane, i), p.row) << "lane " << lane << " a" << i;
      EXPECT_EQ(L::a_col(lane, i), p.col) << "lane " << lane << " a" << i;
      ++a[p.row * 16 + p.col];
    }
    for (uint32_t i = 0; i < L::kBElements; ++i) {
      Coord p = ptx_b(lane, i);
      EXPECT_EQ(L::b_k(lane, i), p.row) << "lane " << lane << " b" << i;
      EXPECT_EQ(L::b_n(lane, i), p.col) << "lane " << lane << " b" << i;
      ++b[p.row * 8 + p.col];
    }
    for (uint32_t i = 0; i < L::kCElements; ++i) {
      Coord p = ptx_c(lane, i);
      EXPECT_EQ(L::c_row(lane, i), p.row) << "lane " << lane << " c" << i;
      EXPECT_EQ(L::c_col(lane, i), p.col) << "lane " << lane << " c" << i;
      ++c[p.row * 8 + p.col];
    }
  }
  for (int n : a) EXPECT_EQ(n, 1);
  for (int n : b) EXPECT_EQ(n, 1);
  for (int n : c) EXPECT_EQ(n, 1);
}

// Each lane reads its fragments in fragment order (lane-major arrays the test fills with PTX's
// layout) and writes its 4 elements of D: the engine alone maps lanes to matrix elements.
template <class T>
void mma_fragments(In<T> a, In<T> b, In<f32> c, Out<f32> d) {
  Val lane = program_id(0) * lsize() + tid();  // this lane's fragments across simdgroups
  MmaA fa;
  MmaB fb;
  MmaAcc fc;
  for (uint32_t i = 0; i < 8; ++i) fa.v[i] = load(a[lane * 8u + i]);
  for (uint32_t i = 0; i < 4; ++i) fb.v[i] = load(b[lane * 4u + i]);
  for (uint32_t i = 0; i < 4; ++i) fc.v[i] = load(c[lane * 4u + i]);
  MmaAcc out = mma(fa, fb, fc);
  for (uint32_t i = 0; i < 4; ++i) store(d[lane * 4u + i], out.v[i]);
}
const KernelDef& mma_fragments_kernel() {
  static const KernelDef k = define_half_kernel("mma_fragments", ir::Mode::Reduction, {"a", "b", "c", "d"},
                                                MTILE_HALF_VARIANTS(mma_fragments));
  return k;
}

// Random A, B, C for `groups` simdgroups, the fragment arrays the lanes read, and D as float64
// rounded once to f32 (the IR's definition), at the lanes PTX gives D's elements to.
struct MmaCase {
  std::vector<uint16_t> a, b;
  std::vector<float> c, want;
};
MmaCase random_case(ScalarType t, uint32_t groups, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  MmaCase m;
  m.a.resize(groups * 32 * 8);
  m.b.resize(groups * 32 * 4);
  m.c.resize(groups * 32 * 4);
  m.want.resize(groups * 32 * 4);
  for (uint32_t g = 0; g < groups; ++g) {
    double A[16][16], B[16][8], C[16][8];
    for (auto& row : A)
      for (double& v : row) v = half_value(t, half_bits(t, u(rng)));
    for (auto& row : B)
      for (double& v : row) v = half_value(t, half_bits(t, u(rng)));
    for (auto& row : C)
      for (double& v : row) v = u(rng);  // an f32 value
    for (uint32_t lane = 0; lane < 32; ++lane) {
      size_t l = g * 32 + lane;
      for (uint32_t i = 0; i < 8; ++i)
        m.a[l * 8 + i] = half_bits(t, static_cast<float>(A[ptx_a(lane, i).row][ptx_a(lane, i).col]));
      for (uint32_t i = 0; i < 4; ++i)
        m.b[l * 4 + i] = half_bits(t, static_cast<float>(B[ptx_b(lane, i).row][ptx_b(lane, i).col]));
      for (uint32_t i = 0; i < 4; ++i) {
        Coord p = ptx_c(lane, i);
        m.c[l * 4 + i] = static_cast<float>(C[p.row][p.col]);
        double sum = C[p.row][p.col];
        for (uint32_t k = 0; k < 16; ++k) sum += A[p.row][k] * B[k][p.col];
        m.want[l * 4 + i] = static_cast<float>(sum);
      }
    }
  }
  return m;
}

std::string run_mma(ScalarType t, const MmaCase& m, std::vector<float>& d, uint32_t tpg, uint32_t groups) {
  ir::Function f = passes::run_pipeline(mma_fragments_kernel().trace(t), Target::cpu());
  std::vector<cpu::TensorView> views = {{const_cast<uint16_t*>(m.a.data()), t, m.a.size()},
                                        {const_cast<uint16_t*>(m.b.data()), t, m.b.size()},
                                        {const_cast<float*>(m.c.data()), ScalarType::f32, m.c.size()},
                                        {d.data(), ScalarType::f32, d.size(), true}};
  try {
    cpu::execute(f, geometry(groups, tpg), views, {0, 0, 0, 0});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Mma, TheEngineComputesEachSimdgroupsProductInFloat64RoundedOnce) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16}) {
    // Two threadgroups of two simdgroups: each simdgroup has its own matrices.
    MmaCase m = random_case(t, 4, 7);
    std::vector<float> d(m.want.size(), NAN);
    ASSERT_EQ(run_mma(t, m, d, 64, 2), "");
    size_t nonzero = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      ASSERT_EQ(d[i], m.want[i]) << type_name(t) << " element " << i << " (lane " << i / 4 << ")";
      nonzero += d[i] != 0.0f;
    }
    EXPECT_GT(nonzero, d.size() / 2);
  }
}

TEST(Mma, TheEngineRefusesAThreadgroupThatIsNotWholeSimdgroups) {
  MmaCase m = random_case(ScalarType::bf16, 2, 1);
  std::vector<float> d(m.want.size(), NAN);
  std::string msg = run_mma(ScalarType::bf16, m, d, 48, 1);
  EXPECT_TRUE(contains(msg, "kernel mma_fragments<bf16>")) << msg;
  EXPECT_TRUE(contains(msg, "mma in simdgroup 1 with 16 of 32 lanes taking part")) << msg;
  EXPECT_TRUE(contains(msg, "threadgroup of 48 threads is not a whole number of 32-lane simdgroups")) << msg;
}

// The DSL's loaders and storer (MatrixRef, bounded): c = a b for a 16 x 16 a and a 16 x 8 b stored
// k-major, then the same b read n-major from its transpose; cb = a b with a's columns from 12 on
// (k >= 12) read as 0, stored to rows < 7 and columns < 5 only.
void mma_tile(In<bf16> a, In<bf16> b, In<bf16> bt, Out<f32> c, Out<f32> ct, Out<f32> cb) {
  MatrixRef as(a, 16u);
  MmaAcc acc = mma(load_mma_a(as, 0u, 0u), load_mma_b_kn(MatrixRef(b, 8u), 0u, 0u), mma_zero());
  store_mma_acc(MatrixRef(c, 8u), 0u, 0u, acc);
  MmaAcc acc2 = mma(load_mma_a(as, 0u, 0u), load_mma_b_nk(MatrixRef(bt, 16u), 0u, 0u), mma_zero());
  store_mma_acc(MatrixRef(ct, 8u), 0u, 0u, acc2);
  MmaAcc acc3 = mma(load_mma_a(as.bounded(16u, 12u), 0u, 0u), load_mma_b_kn(MatrixRef(b, 8u), 0u, 0u), mma_zero());
  store_mma_acc(MatrixRef(cb, 8u).bounded(7u, 5u), 0u, 0u, acc3);
}

TEST(Mma, TheLoadersAndTheStorerPlaceEveryElement) {
  ir::Function f =
      passes::run_pipeline(define_kernel("mma_tile", ir::Mode::Reduction, {"a", "b", "bt", "c", "ct", "cb"}, &mma_tile)
                               .trace(ScalarType::f32),
                           Target::cpu());
  std::vector<uint16_t> a(256), b(128), bt(128);
  std::vector<double> A(256), B(128);
  for (uint32_t i = 0; i < 256; ++i) A[i] = bf16_bits_to_f32(a[i] = f32_to_bf16_bits(std::sin(i * 0.37f) * 3.0f));
  for (uint32_t k = 0; k < 16; ++k)
    for (uint32_t n = 0; n < 8; ++n) {
      uint16_t h = f32_to_bf16_bits(std::cos(k * 1.3f + n * 0.7f));
      B[k * 8 + n] = bf16_bits_to_f32(h);
      b[k * 8 + n] = h;
      bt[n * 16 + k] = h;
    }
  std::vector<float> c(128, NAN), ct(128, NAN), cb(128, NAN);
  cpu::execute(f, geometry(1, 32),
               {{a.data(), ScalarType::bf16, 256},
                {b.data(), ScalarType::bf16, 128},
                {bt.data(), ScalarType::bf16, 128},
                {c.data(), ScalarType::f32, 128, true},
                {ct.data(), ScalarType::f32, 128, true},
                {cb.data(), ScalarType::f32, 128, true}},
               {0, 0, 0, 0, 0, 0});
  for (uint32_t r = 0; r < 16; ++r)
    for (uint32_t n = 0; n < 8; ++n) {
      double sum = 0, first12 = 0;
      for (uint32_t k = 0; k < 16; ++k) sum += A[r * 16 + k] * B[k * 8 + n];
      for (uint32_t k = 0; k < 12; ++k) first12 += A[r * 16 + k] * B[k * 8 + n];
      EXPECT_EQ(c[r * 8 + n], static_cast<float>(sum)) << r << ", " << n;
      EXPECT_EQ(ct[r * 8 + n], static_cast<float>(sum)) << r << ", " << n;
      if (r < 7 && n < 5)
        EXPECT_EQ(cb[r * 8 + n], static_cast<float>(first12)) << r << ", " << n;
      else
        EXPECT_TRUE(std::isnan(cb[r * 8 + n])) << "written outside the bounds: " << r << ", " << n;
    }
}

// The DSL refuses fragments of the wrong types, naming the kernel.
template <int Case>
void bad_mma(In<f32> x, In<f16> h, In<bf16> bh, Out<f32> y) {
  MmaA a;
  MmaB b;
  MmaAcc c = mma_zero();
  Val hv = load(h[tid()]), bv = load(bh[tid()]), fv = load(x[tid()]);
  for (Val& v : a.v) v = Case == 0 ? fv : bv;
  for (Val& v : b.v) v = Case == 1 ? hv : bv;
  if (Case == 2) c.v[3] = hv;
  MmaAcc d = mma(a, b, c);
  store(y[tid()], d.v[0]);
}
std::string trace_error(void (*fn)(In<f32>, In<f16>, In<bf16>, Out<f32>)) {
  try {
    define_kernel("bad_mma", ir::Mode::Reduction, {"x", "h", "bh", "y"}, fn).trace(ScalarType::f32);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Mma, TheDslRefusesFragmentsOfTheWrongTypes) {
  std::string f32_a = trace_error(&bad_mma<0>);
  EXPECT_TRUE(contains(f32_a, "kernel bad_mma<f32>") && contains(f32_a, "mma: A's elements are f32")) << f32_a;
  std::string mixed = trace_error(&bad_mma<1>);
  EXPECT_TRUE(contains(mixed, "mma: B element 0 is f16, not bf16")) << mixed;
  std::string acc = trace_error(&bad_mma<2>);
  EXPECT_TRUE(contains(acc, "mma: C element 3 is f16, not f32")) << acc;
}

// A hand-built mma (the verifier sees what the DSL would refuse): operands of the given types.
std::string verify_mma(std::vector<ScalarType> operand_types, ScalarType result = ScalarType::f32, uint8_t lanes = 4) {
  ir::Function f;
  f.name = "hand_mma";
  ir::Inst mma;
  mma.op = ir::Op::Mma;
  mma.type = result;
  mma.lanes = lanes;
  for (ScalarType t : operand_types) {
    ir::Inst c;
    c.op = ir::Op::Const;
    c.type = t;
    c.result = f.fresh_id();
    mma.args.push_back(c.result);
    f.body.insts.push_back(c);
  }
  mma.result = f.fresh_id();
  f.body.insts.push_back(mma);
  try {
    ir::verify(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "verified";
}
std::vector<ScalarType> operands(ScalarType a, ScalarType b, ScalarType c = ScalarType::f32, size_t n = 16) {
  std::vector<ScalarType> t;
  for (size_t i = 0; i < n; ++i) t.push_back(i < 8 ? a : i < 12 ? b : c);
  return t;
}

TEST(Mma, TheVerifierChecksArityTypesAndLanes) {
  EXPECT_EQ(verify_mma(operands(ScalarType::bf16, ScalarType::bf16)), "verified");
  EXPECT_EQ(verify_mma(operands(ScalarType::f16, ScalarType::f16)), "verified");
  std::string arity = verify_mma(operands(ScalarType::bf16, ScalarType::bf16, ScalarType::f32, 15));
  EXPECT_TRUE(contains(arity, "kernel hand_mma at 'mma'") && contains(arity, "expects 16 operands, has 15")) << arity;
  std::string mixed = verify_mma(operands(ScalarType::bf16, ScalarType::f16));
  EXPECT_TRUE(contains(mixed, "B element must be bf16, got f16")) << mixed;
  std::string f32_a = verify_mma(operands(ScalarType::f32, ScalarType::f32));
  EXPECT_TRUE(contains(f32_a, "A and B elements are bf16 or f16, not f32")) << f32_a;
  std::string c_type = verify_mma(operands(ScalarType::bf16, ScalarType::bf16, ScalarType::bf16));
  EXPECT_TRUE(contains(c_type, "C element must be f32, got bf16")) << c_type;
  std::string lanes = verify_mma(operands(ScalarType::bf16, ScalarType::bf16), ScalarType::f32, 2);
  EXPECT_TRUE(contains(lanes, "gives 4 lanes of f32, not 2 of f32")) << lanes;
}

// mma under an if_: on a lane's value (refused), on the simdgroup's index (the same in every lane).
template <bool per_lane>
void mma_under_if(In<bf16> a, Out<f32> c) {
  MmaA fa;
  MmaB fb;
  Val v = load(a[tid()]);
  for (Val& x : fa.v) x = v;
  for (Val& x : fb.v) x = v;
  Val cond = per_lane ? simd_lane() < 16u : simd_group() < 1u;
  if_(cond, [&] { store(c[tid()], mma(fa, fb, mma_zero()).v[0]); });
}

TEST(Mma, IsRefusedUnderControlFlowThatDiffersWithinASimdgroup) {
  std::string msg;
  try {
    define_kernel("lane_if", ir::Mode::Reduction, {"a", "c"}, &mma_under_if<true>).trace(ScalarType::f32);
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "kernel lane_if<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "mma at matrix_test.cpp")) << msg;
  EXPECT_TRUE(contains(msg, "differs between threads")) << msg;
  EXPECT_TRUE(contains(msg, "every lane of the simdgroup must reach it together")) << msg;
  EXPECT_NO_THROW(
      define_kernel("group_if", ir::Mode::Reduction, {"a", "c"}, &mma_under_if<false>).trace(ScalarType::f32));
}

// The passes keep every mma where the kernel put it: two equal ones stay two, one under a uniform
// if stays under it, and an unused one is not removed (every lane executes it or none does).
void two_equal_mmas(In<bf16> a, Out<f32> c, Constexpr n) {
  MmaA fa;
  MmaB fb;
  Val v = load(a[tid()]);
  for (Val& x : fa.v) x = v;
  for (Val& x : fb.v) x = v;
  MmaAcc first = mma(fa, fb, mma_zero()), second = mma(fa, fb, mma_zero());
  mma(fa, fb, first);  // unused
  if_(n > 4u, [&] { store(c[tid()], mma(fa, fb, second).v[1]); });
  store(c[tid() + 32u], first.v[0] + second.v[0]);
}

TEST(Mma, ThePassesNeitherMergeNorMoveNorDropIt) {
  ir::Function f = passes::run_pipeline(
      define_kernel("two_mmas", ir::Mode::Reduction, {"a", "c", "n"}, &two_equal_mmas).trace(ScalarType::f32),
      Target::cuda("sm_90a"));
  int top = 0, in_if = 0;
  for (const ir::Inst& in : f.body.insts) {
    top += in.op == ir::Op::Mma;
    if (in.op == ir::Op::If) ir::for_each_inst(in.blocks[0], [&](const ir::Inst& i) { in_if += i.op == ir::Op::Mma; });
  }
  EXPECT_EQ(top, 3) << ir::print(f);
  EXPECT_EQ(in_if, 1) << ir::print(f);
}

// The generated code: mma.sync for CUDA, simdgroup matrices for Metal; the prelude's helpers come
// only with the op.
TEST(Mma, CudaPrintsMmaSyncAndMetalSimdgroupMatrices) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16}) {
    ir::Function f = passes::run_pipeline(mma_fragments_kernel().trace(t), Target::cuda("sm_90a"));
    std::string cuda = codegen::emit_cuda(f);
    std::string ty = type_name(t);
    EXPECT_TRUE(contains(cuda, fmt::format("mma.sync.aligned.m16n8k16.row.col.f32.{0}.{0}.f32", ty))) << cuda;
    EXPECT_TRUE(contains(cuda, fmt::format("= mt_mma_m16n8k16_{}(", ty))) << cuda;  // D, read as .x .y .z .w
    EXPECT_TRUE(contains(cuda, "float4 v")) << cuda;
    std::string msl = codegen::emit_msl(passes::run_pipeline(mma_fragments_kernel().trace(t), Target::metal("apple9")));
    EXPECT_TRUE(contains(msl, "#include <metal_simdgroup_matrix>")) << msl;
    EXPECT_TRUE(contains(msl, "simdgroup_multiply_accumulate(d[ti], a[ti][0], b[0], c[ti]);")) << msl;
    EXPECT_TRUE(contains(msl, "mt_mma_m16n8k16(")) << msl;
    EXPECT_TRUE(contains(msl, "uint mt_simd_lane [[thread_index_in_simdgroup]]")) << msl;
  }
  ir::Function plain = passes::run_pipeline(
      define_kernel("two_mmas", ir::Mode::Reduction, {"a", "c", "n"}, &two_equal_mmas).trace(ScalarType::f32),
      Target::cuda("sm_90a"));
  EXPECT_TRUE(contains(codegen::emit_cuda(plain), "mma.sync"));
  std::string none = codegen::emit_cuda(passes::run_pipeline(
      define_kernel(
          "plain_store", ir::Mode::Reduction, {"y"}, +[](Out<f32> y) { store(y[tid()], lit(1.0f)); })
          .trace(ScalarType::f32),
      Target::cuda("sm_90a")));
  EXPECT_FALSE(contains(none, "mma.sync")) << none;
  EXPECT_FALSE(contains(none, "mt_mma")) << none;
  EXPECT_FALSE(contains(none, "cp.async")) << none;
}

TEST(Mma, NvrtcCompilesItForSm80AndMtileRefusesOlderArchs) {
  ir::Function f = passes::run_pipeline(mma_fragments_kernel().trace(ScalarType::bf16), Target::cuda("sm_80"));
  std::string msg;
  try {
    cuda::compile_for_arch(f, "sm_75");
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "kernel mma_fragments<bf16>")) << msg;
  EXPECT_TRUE(contains(msg, "needs sm_80 or newer, and the CUDA code is for sm_75")) << msg;
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  cuda::NvrtcResult r = cuda::compile_for_arch(f, "sm_80");
  EXPECT_GT(r.cubin.size(), 0u);
  EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
}

// ---------------------------------------------------------------------------------------------
// Async copies.

// Thread t copies x[8t .. 8t + 7] (16 bytes of bf16) into tile[8t ..] in group 1 and x[256 + 8t ..]
// into tile[256 + 8t ..] in group 2; after waiting for both and a barrier it reads another
// thread's.
void staged(In<bf16> x, Out<bf16> y) {
  TgArray tile = threadgroup_array<bf16>(512);
  copy_async(tile[tid() * 8u], x[tid() * 8u], 8);
  copy_async_commit();
  copy_async(tile[tid() * 8u + 256u], x[tid() * 8u + 256u], 8);
  copy_async_commit();
  copy_async_wait(1);
  copy_async_wait(0);
  barrier();
  for_(tid(), 512u, lsize(), [&](Val i) { store(y[i], load(tile[511u - i])); });
}
ir::Function staged_ir(const Target& t) {
  return passes::run_pipeline(
      define_kernel("staged", ir::Mode::Reduction, {"x", "y"}, &staged, ScalarType::bf16).trace(ScalarType::bf16), t);
}

TEST(CopyAsync, TheEngineCopiesWhenItIsIssued) {
  ir::Function f = staged_ir(Target::cpu());
  std::vector<uint16_t> x(512), y(512, 0xffff);
  for (uint32_t i = 0; i < 512; ++i) x[i] = f32_to_bf16_bits(static_cast<float>(i));
  for (bool sanitize : {false, true}) {
    cpu::EngineOptions o;
    o.sanitize = sanitize;
    cpu::execute(f, geometry(1, 32), {{x.data(), ScalarType::bf16, 512}, {y.data(), ScalarType::bf16, 512, true}},
                 {0, 0}, o);
    for (uint32_t i = 0; i < 512; ++i) ASSERT_EQ(y[i], x[511 - i]) << i;
  }
  std::string text = ir::print(f);
  EXPECT_TRUE(contains(text, "copy_async tg ")) << text;
  EXPECT_TRUE(contains(text, "x8 : bf16")) << text;
  EXPECT_TRUE(contains(text, "copy_async_commit")) << text;
  EXPECT_TRUE(contains(text, "copy_async_wait 1")) << text;
}

// Thread t copies x[4t + offset ..] into tile[4t ..] (what a launch refuses, the raw engine reports).
template <uint32_t Offset>
void offset_copy(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(128);
  copy_async(tile[tid() * 4u], x[tid() * 4u + Offset], 4);
  copy_async_commit();
  copy_async_wait(0);
  store(y[tid()], load(tile[tid() * 4u]));
}
std::string copy_fault(void (*fn)(In<f32>, Out<f32>)) {
  ir::Function f = passes::run_pipeline(
      define_kernel("offset_copy", ir::Mode::Reduction, {"x", "y"}, fn).trace(ScalarType::f32), Target::cpu());
  std::vector<float> x(128, 1.0f), y(32);
  try {
    mtile::testing::run_f32(f, geometry(1, 32), {&x, &y});
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CopyAsync, TheEngineReportsMisalignedAndOutOfBoundsCopies) {
  EXPECT_EQ(copy_fault(&offset_copy<0>), "no error");
  std::string misaligned = copy_fault(&offset_copy<2>);
  EXPECT_TRUE(contains(misaligned, "kernel offset_copy<f32>")) << misaligned;
  EXPECT_TRUE(contains(misaligned, "copy_async of 4 elements from 'x' at index 2 into threadgroup array"))
      << misaligned;
  EXPECT_TRUE(contains(misaligned, "at index 0: both indices must be multiples of 4 (misaligned)")) << misaligned;
  EXPECT_TRUE(contains(misaligned, "thread 0, at 'copy_async'")) << misaligned;
  std::string past = copy_fault(&offset_copy<4>);
  EXPECT_TRUE(contains(past, "copy_async from 'x' at indices 128..131 is out of bounds (128 elements)")) << past;
  EXPECT_TRUE(contains(past, "thread 31")) << past;
}

// A load of the destination before the copy and one after its wait read different values: common
// subexpression elimination must not merge them (the copy writes the array).
void reload_after_copy(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(32);
  store(tile[tid()], lit(1.0f));
  Val before = load(tile[tid()]);
  copy_async(tile[tid()], x[tid()], 1);
  copy_async_commit();
  copy_async_wait(0);
  Val after = load(tile[tid()]);
  store(y[tid()], before * 10.0f + after);
}

TEST(CopyAsync, IsAWriteOfItsArrayToThePasses) {
  ir::Function f = passes::run_pipeline(
      define_kernel("reload", ir::Mode::Reduction, {"x", "y"}, &reload_after_copy).trace(ScalarType::f32),
      Target::cpu());
  int tg_loads = 0;
  ir::for_each_inst(
      f.body, [&](const ir::Inst& in) { tg_loads += in.op == ir::Op::Load && in.space == ir::MemSpace::Threadgroup; });
  EXPECT_EQ(tg_loads, 2) << ir::print(f);
  std::vector<float> x(32, 3.0f), y(32, NAN);
  mtile::testing::run_f32(f, geometry(1, 32), {&x, &y});
  EXPECT_EQ(y[5], 13.0f);
}

TEST(CopyAsync, CudaUsesCpAsyncThatNvrtcCompilesAndMetalAPlainCopy) {
  std::string cuda = codegen::emit_cuda(staged_ir(Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "cp.async.cg.shared.global")) << cuda;
  EXPECT_TRUE(contains(cuda, "__cvta_generic_to_shared")) << cuda;
  EXPECT_TRUE(contains(cuda, "__shared__ __align__(16) unsigned short tg")) << cuda;
  EXPECT_TRUE(contains(cuda, "mt_copy_async<16>(&tg")) << cuda;
  EXPECT_TRUE(contains(cuda, "mt_copy_async_commit();")) << cuda;
  EXPECT_TRUE(contains(cuda, "mt_copy_async_wait<1>();")) << cuda;
  EXPECT_TRUE(contains(cuda, "mt_copy_async_wait<0>();")) << cuda;
  std::string msl = codegen::emit_msl(staged_ir(Target::metal("apple9")));
  EXPECT_FALSE(contains(msl, "copy_async")) << msl;
  EXPECT_TRUE(contains(msl, " + 7u] = x[")) << msl;  // the eighth element of a plain copy
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  // cp.async from sm_80 on; before it the helper copies plainly and still compiles.
  for (const char* arch : {"sm_90a", "sm_80", "sm_75"})
    EXPECT_GT(cuda::compile_for_arch(staged_ir(Target::cuda("sm_90a")), arch).cubin.size(), 0u) << arch;
}

// Both indices of a copy must provably be multiples of its lanes at launch.
void misaligned_copy(In<f32> x, Out<f32> y, Constexpr n) {
  TgArray tile = threadgroup_array<f32>(256);
  copy_async(tile[tid() * 4u], x[tid() * n], 4);
  copy_async(tile[tid() * 2u], x[tid() * 4u], 4);
  copy_async_commit();
  copy_async_wait(0);
  barrier();
  store(y[tid()], load(tile[tid()]));
}

TEST(CopyAsync, LaunchesProveBothIndicesAligned) {
  ir::Function f =
      define_kernel("misaligned_copy", ir::Mode::Reduction, {"x", "y", "n"}, &misaligned_copy).trace(ScalarType::f32);
  std::vector<std::string> bad = passes::misaligned_vector_accesses(f, {{"n", 6}});
  ASSERT_EQ(bad.size(), 2u) << fmt::format("{}", fmt::join(bad, "\n"));
  EXPECT_TRUE(contains(bad[0], "copy_async of 4 elements from 'x' at index thread_id * n (n = 6)")) << bad[0];
  EXPECT_TRUE(contains(bad[1], "copy_async of 4 elements into threadgroup array")) << bad[1];
  EXPECT_TRUE(contains(bad[1], "at index thread_id * 2")) << bad[1];
  EXPECT_EQ(passes::misaligned_vector_accesses(f, {{"n", 8}}).size(), 1u);
}

// An XOR (or OR) of two multiples of 4 is one: the swizzled rows of gemm's warpgroup body.
void swizzled_copy(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(1024);
  copy_async(tile[(tid() * 4u) ^ (tid() % 8u * 4u)], x[tid() * 4u], 4);
  copy_async(tile[(tid() * 8u) | 4u], x[tid() * 4u], 4);
  copy_async(tile[(tid() * 4u) ^ (tid() % 8u * 2u)], x[tid() * 4u], 4);
  copy_async_commit();
  copy_async_wait(0);
  barrier();
  store(y[tid()], load(tile[tid()]));
}

TEST(CopyAsync, AnXorOfAlignedIndicesIsAligned) {
  ir::Function f =
      define_kernel("swizzled_copy", ir::Mode::Reduction, {"x", "y"}, &swizzled_copy).trace(ScalarType::f32);
  std::vector<std::string> bad = passes::misaligned_vector_accesses(f, {});
  ASSERT_EQ(bad.size(), 1u) << fmt::format("{}", fmt::join(bad, "\n"));
  EXPECT_TRUE(contains(bad[0], "^ ((thread_id % 8) * 2)")) << bad[0];
}

TEST(CopyAsync, TheDslAndTheVerifierRefuseWhatItCannotCopy) {
  auto error = [](void (*fn)(In<f32>, Out<f32>)) {
    try {
      define_kernel("bad_copy", ir::Mode::Reduction, {"x", "y"}, fn).trace(ScalarType::f32);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string twelve = error(+[](In<f32> x, Out<f32> y) {
    TgArray t = threadgroup_array<f32>(64);
    copy_async(t[tid() * 3u], x[tid() * 3u], 3);
    store(y[tid()], load(t[tid()]));
  });
  EXPECT_TRUE(contains(twelve, "copy_async of 3 elements of f32 from 'x': 12 bytes, where it copies 4, 8 or 16"))
      << twelve;
  std::string types = error(+[](In<f32> x, Out<f32> y) {
    TgArray t = threadgroup_array<u32>(64);
    copy_async(t[tid() * 4u], x[tid() * 4u], 4);
    store(y[tid()], load(x[tid()]));
  });
  EXPECT_TRUE(contains(types, "the element types must be the same")) << types;
  std::string direction = error(+[](In<f32> x, Out<f32> y) {
    TgArray t = threadgroup_array<f32>(64);
    copy_async(y[tid() * 4u], x[tid() * 4u], 4);
    store(y[tid()], load(t[tid()]));
  });
  EXPECT_TRUE(contains(direction, "it copies from a device tensor into a threadgroup array")) << direction;
}

}  // namespace
