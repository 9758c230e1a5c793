// load_matrix (docs/IR.md): the fragment loaders of an aligned_rows threadgroup matrix give every
// lane what the element-by-element loaders give (both on the CPU engine, under its sanitizer), the
// engine reports misaligned and out-of-bounds rows, the verifier and the uniformity rule refuse
// what the op can't be, CUDA prints ldmatrix whose words go straight into mma.sync, NVRTC compiles
// it, and Metal's helper gives each lane its pairs on a simulated simdgroup.
#include <fmt/format.h>

#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "mtile/dsl_matrix.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::geometry;

namespace {

constexpr uint32_t kRows = 32, kCols = 32, kLd = 40;  // the staged matrix: 32 x 32 in rows of 40

// Stages x (32 x 32) into a threadgroup matrix with rows of `ld`, then stores what each lane's
// fragments hold, lane-major, for every loader: out[lane * 40 + ...] = A at (16, 8) (8 elements),
// B n-major at (8, 16) (4), the two B n-major tiles at (0, 8) (8), B k-major at (16, 8) (4), the
// two k-major tiles at (0, 16) (8): 32 a lane, then 8 unused. Aligned reads 8 x 8 matrices.
// x (32 x 32) in a threadgroup array with rows of `ld`, after a barrier.
TgArray staged(const Tensor& x, uint32_t ld) {
  TgArray tile = threadgroup_array<bf16>(kRows * ld);
  for (uint32_t i = 0; i < kRows * kCols / 32; ++i) {
    Val e = tid() + i * 32u;
    store(tile[e / kCols * ld + e % kCols], load(x[e]));
  }
  barrier();
  return tile;
}

template <bool Aligned, uint32_t Ld = kLd>
void fragments(In<bf16> x, Out<bf16> out) {
  MatrixRef m(staged(x, Ld), Ld);
  if (Aligned) m = m.aligned_rows();
  std::vector<Val> v;
  for (const Val& a : load_mma_a(m, 16u, 8u).v) v.push_back(a);
  for (const Val& b : load_mma_b_nk(m, 8u, 16u).v) v.push_back(b);
  for (const MmaB& b : load_mma_b_nk_x2(m, 0u, 8u))
    for (const Val& e : b.v) v.push_back(e);
  for (const Val& b : load_mma_b_kn(m, 16u, 8u).v) v.push_back(b);
  for (const MmaB& b : load_mma_b_kn_x2(m, 0u, 16u))
    for (const Val& e : b.v) v.push_back(e);
  Val lane = simd_lane();
  for (uint32_t i = 0; i < v.size(); ++i) store(out[lane * 40u + i], v[i]);
}

ir::Function traced(void (*fn)(In<bf16>, Out<bf16>), const char* name, const Target& t = Target::cpu()) {
  return passes::run_pipeline(
      define_kernel(name, ir::Mode::Reduction, {"x", "out"}, fn, ScalarType::bf16).trace(ScalarType::bf16), t);
}

std::vector<uint16_t> random_matrix() {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  std::vector<uint16_t> x(kRows * kCols);
  for (uint16_t& h : x) h = f32_to_bf16_bits(u(rng));
  return x;
}

std::vector<uint16_t> run(const ir::Function& f, const std::vector<uint16_t>& x, std::string* error = nullptr) {
  std::vector<uint16_t> out(32 * 40, 0x7fc1);  // NaN: what no lane writes stays NaN
  cpu::EngineOptions opts;
  opts.sanitize = true;
  try {
    cpu::execute(f, geometry(1, 32),
                 {{const_cast<uint16_t*>(x.data()), ScalarType::bf16, x.size()},
                  {out.data(), ScalarType::bf16, out.size(), true}},
                 {0, 0}, opts);
  } catch (const Error& e) {
    if (!error) throw;
    *error = e.what();
  }
  return out;
}

TEST(LoadMatrix, TheLoadersGiveEveryLaneWhatElementLoadsGive) {
  ir::Function whole = traced(&fragments<true>, "whole"), elements = traced(&fragments<false>, "elements");
  size_t matrix_loads = 0;
  ir::for_each_inst(whole.body, [&](const ir::Inst& in) { matrix_loads += in.op == ir::Op::LoadMatrix; });
  EXPECT_EQ(matrix_loads, 5u) << ir::print(whole);
  ir::for_each_inst(elements.body, [](const ir::Inst& in) { EXPECT_NE(in.op, ir::Op::LoadMatrix); });
  std::vector<uint16_t> x = random_matrix();
  std::vector<uint16_t> got = run(whole, x), want = run(elements, x);
  namespace L = mma_layout;
  for (uint32_t lane = 0; lane < 32; ++lane) {
    for (uint32_t i = 0; i < 32; ++i) EXPECT_EQ(got[lane * 40 + i], want[lane * 40 + i]) << lane << " " << i;
    // The element loaders against the layout, for A (rows 16.., columns 8..).
    for (uint32_t i = 0; i < 8; ++i)
      EXPECT_EQ(want[lane * 40 + i], x[(16 + L::a_row(lane, i)) * kCols + 8 + L::a_col(lane, i)]);
    // B k-major at (k0 16, n0 8): B(k, n) = x(16 + k, 8 + n).
    for (uint32_t i = 0; i < 4; ++i)
      EXPECT_EQ(want[lane * 40 + 20 + i], x[(16 + L::b_k(lane, i)) * kCols + 8 + L::b_n(lane, i)]);
  }
}

TEST(LoadMatrix, TheEngineReportsAMisalignedRow) {
  std::string error;
  run(traced(&fragments<true, 36>, "misaligned"), random_matrix(), &error);
  EXPECT_TRUE(contains(error, "kernel misaligned<bf16>: matrix load of threadgroup array")) << error;
  EXPECT_TRUE(contains(error, "not a multiple of 8 (16 bytes: misaligned)")) << error;
}

// Rows of 32 from row 30 on run past a 32 x 32 array.
void past_the_end(In<bf16> x, Out<bf16> out) {
  TgArray tile = threadgroup_array<bf16>(kRows * kCols);
  for (uint32_t i = 0; i < kRows; ++i) store(tile[tid() + i * 32u], load(x[tid() + i * 32u]));
  barrier();
  MmaA a = load_mma_a(MatrixRef(tile, kCols).aligned_rows(), 24u, 0u);
  store(out[simd_lane()], a.v[0]);
}

TEST(LoadMatrix, TheEngineReportsARowOutOfBounds) {
  std::string error;
  run(traced(&past_the_end, "past_end"), random_matrix(), &error);
  EXPECT_TRUE(contains(error, "out of bounds (1024 elements)")) << error;
}

// Under control flow that differs between lanes: refused at trace time.
void under_lane_if(In<bf16> x, Out<bf16> out) {
  TgArray tile = threadgroup_array<bf16>(kRows * kLd);
  store(tile[tid()], load(x[tid()]));
  barrier();
  if_(simd_lane() < 16u, [&] { store(out[tid()], load_mma_a(MatrixRef(tile, kLd).aligned_rows(), 0u, 0u).v[0]); });
}

TEST(LoadMatrix, IsRefusedUnderControlFlowThatDiffersWithinASimdgroup) {
  std::string msg;
  try {
    traced(&under_lane_if, "lane_if");
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "load_matrix")) << msg;
  EXPECT_TRUE(contains(msg, "every lane of the simdgroup must reach it together")) << msg;
}

TEST(LoadMatrix, TheVerifierChecksSpaceTypeLanesAndTheTransposeFlag) {
  ir::Function f = traced(&fragments<true>, "whole");
  auto first = [](ir::Block& b) -> ir::Inst& {
    for (ir::Inst& in : b.insts)
      if (in.op == ir::Op::LoadMatrix) return in;
    throw Error("no load_matrix");
  };
  auto refused = [&](auto&& edit, const char* why) {
    ir::Function g = f;
    edit(first(g.body));
    std::string msg;
    try {
      ir::verify(g);
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_TRUE(contains(msg, why)) << msg;
  };
  refused([](ir::Inst& in) { in.lanes = 6; }, "6 lanes (2, 4 or 8)");
  refused([](ir::Inst& in) { in.bits = 2; }, "transpose flag 2 (0 or 1)");
  refused([](ir::Inst& in) { in.space = ir::MemSpace::Device; }, "reads threadgroup memory only");
  refused([](ir::Inst& in) { in.type = ScalarType::f16; }, "matrix load of f16 from an array of bf16");
  EXPECT_NO_THROW(ir::verify(f));
}

TEST(LoadMatrix, CudaPrintsLdmatrixWhoseWordsFeedMmaSync) {
  std::string cuda = codegen::emit_cuda(traced(&fragments<true>, "whole", Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "asm volatile(\"ldmatrix.sync.aligned.m8n8.x\" #N TRANS \".shared.b16 \"")) << cuda;
  for (const char* call : {"mt_matrix4 v", "= mt_load_matrix_x4(&", "= mt_load_matrix_x2(&",
                           "= mt_load_matrix_x2_trans(&", "= mt_load_matrix_x4_trans(&"})
    EXPECT_TRUE(contains(cuda, call)) << call << "\n" << cuda;
  std::string plain = codegen::emit_cuda(traced(&fragments<false>, "elements", Target::cuda("sm_90a")));
  EXPECT_FALSE(contains(plain, "ldmatrix")) << plain;
}

// A gemm step on an aligned tile: the mma takes ldmatrix's words, packing nothing.
void tile_mma(In<bf16> x, Out<bf16> out) {
  MatrixRef m = MatrixRef(staged(x, kLd), kLd).aligned_rows();
  MmaAcc acc = mma(load_mma_a(m, 0u, 0u), load_mma_b_nk(m, 16u, 0u), mma_zero());
  store_mma_acc(MatrixRef(out, 8u), 0u, 0u, acc);
}

TEST(LoadMatrix, MmaTakesItsWordsAndNvrtcCompilesIt) {
  ir::Function f = traced(&tile_mma, "tile_mma", Target::cuda("sm_80"));
  std::string cuda = codegen::emit_cuda(f);
  EXPECT_TRUE(contains(cuda, ".w[0], ")) << cuda;
  EXPECT_FALSE(contains(cuda, "mt_pack_bf16(v")) << cuda;  // no pair rebuilt from its two halves
  std::string msg;
  try {
    cuda::compile_for_arch(f, "sm_70");
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "kernel tile_mma<bf16>")) << msg;
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  cuda::NvrtcResult r = cuda::compile_for_arch(f, "sm_80");
  EXPECT_GT(r.cubin.size(), 0u);
  EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
  EXPECT_NO_THROW(cuda::compile_for_arch(traced(&fragments<true>, "whole", Target::cuda("sm_80")), "sm_75"));
}

TEST(LoadMatrix, MetalCallsItsHelper) {
  std::string msl = codegen::emit_msl(traced(&fragments<true>, "whole", Target::metal("apple9")));
  EXPECT_TRUE(contains(msl, "inline mt_matrix##N mt_load_matrix_x##N##SUFFIX")) << msl;
  EXPECT_TRUE(contains(msl, "= mt_load_matrix_x4(")) << msl;
  EXPECT_TRUE(contains(msl, "as_type<bfloat>(ushort(")) << msl;
}

}  // namespace
