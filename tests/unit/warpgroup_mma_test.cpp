// mma_async, mma_fence and mma_wait (docs/IR.md, "Warpgroup matrix multiply-accumulate"): the CPU
// engine's product against a float64 one for every n it takes, its refusals, the DSL's, what CUDA
// prints and NVRTC compiles for sm_90a, and the refusals of other archs and of Metal.
#include <fmt/format.h>

#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "mtile/dsl_matrix.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::error_of;
using mtile::testing::geometry;
using mtile::testing::half_bits;
using mtile::testing::half_value;

namespace {

namespace L = mma_layout;
constexpr uint32_t kK = 64;  // four mma_asyncs chained before one wait; one swizzled row

// Each warpgroup g of the threadgroup multiplies its own A (rows 64 g .. 64 g + 63 of a, m x 64) by
// the shared B (w, n x 64, n-major) and adds c (m x n): A and W are copied element by element into
// core matrices (Config swizzle 0) or swizzled 128-byte rows (128), then four mma_asyncs (k 0-15,
// ..., 48-63) and one wait. Config: n, and `bad` 1 gives warpgroup 1 an A one core matrix further
// on (operands that differ within a warpgroup when the threadgroup is one warpgroup split: used
// with 64 threads), 2 a misaligned A, 3 an A whose 16 columns pass the end of a swizzled row, 4
// a write of B while the products are in flight, 5 the same write after waiting for them, 7 (A from
// registers) the wait outside the block of the products. `b_kn` 1 stores B [k][n] instead (swizzled
// rows of k, columns in blocks of 64: V's layout in attention); `a_regs` 1 gives A from registers,
// each thread loading its simdgroup's rows in mma's A layout.
template <class T>
void warpgroup_product(In<T> a, In<T> w, In<f32> c, Out<f32> d) {
  const uint32_t n = config("n", 64), bad = config("bad", 0), groups = config("groups", 2),
                 swizzle = config("swizzle", 0), b_kn = config("b_kn", 0), a_regs = config("a_regs", 0);
  const uint32_t a_elems = groups * 64 * kK, n_blocks = (n + 63) / 64;
  auto at = [&](const Val& r, const Val& k) {
    return swizzle ? swizzle128_index(r, k).val : core_matrix_index(r, k, kK).val;
  };
  TgArray tiles = threadgroup_array(a.elem, a_elems + (b_kn ? n_blocks * 64 * kK : n * kK));
  for_(tid(), lit(a_elems), lsize(), [&](Val i) {
    Val r = i / kK, k = i % kK;
    store(tiles[r / 64u * (64 * kK) + at(r % 64u, k)], load(a[i]));
  });
  for_(tid(), lit(n * kK), lsize(), [&](Val i) {
    Val col = i / kK, k = i % kK;  // w is n x 64: B(k, col) = w[col, k]
    Val at_b = b_kn ? col / 64u * (64 * kK) + swizzle128_index(k, col % 64u).val : at(col, k);
    store(tiles[lit(a_elems) + at_b], load(w[i]));
  });
  mma_fence();
  barrier();
  Val group = simd_group() / 4u, row0 = group * 64u + simd_group() % 4u * 16u;
  WarpgroupAcc acc;
  for (uint32_t j = 0; j < n / 8; ++j)
    for (uint32_t e = 0; e < L::kCElements; ++e)
      acc.v.push_back(load(c[(row0 + L::c_row(simd_lane(), e)) * n + j * 8 + L::c_col(simd_lane(), e)]));
  Val a_first = group * (64 * kK);
  if (bad == 1) a_first = a_first + select(tid() >= 32u, lit(64u), lit(0u));
  if (bad == 2) a_first = a_first + 4u;
  if (bad == 3) a_first = a_first + 56u;
  Val b_first = lit(a_elems);
  if (bad == 6) b_first = b_first + 64u;  // [k][n] B one row on: not a whole atom
  auto b_at = [&](uint32_t k0) {
    return b_kn      ? swizzle128_rows_kn(b_first, k0, 64 * kK)
           : swizzle ? swizzle128_rows(b_first, 0u, k0)
                     : core_matrices(b_first, 0u, k0, kK);
  };
  auto a_regs_at = [&](uint32_t k0) {
    MmaA frag;
    for (uint32_t e = 0; e < L::kAElements; ++e)
      frag.v[e] = load(a[(row0 + L::a_row(simd_lane(), e)) * kK + k0 + L::a_col(simd_lane(), e)]);
    return frag;
  };
  if (a_regs) {
    auto products = [&] {
      for (uint32_t k0 = 0; k0 < kK; k0 += 16) acc = mma_async(tiles, a_regs_at(k0), b_at(k0), acc);
    };
    if (bad == 7) {  // the products in a block, their last wait after it
      WarpgroupAccVar held(acc);
      if_(program_id(0) < 4096u, [&] {
        products();
        held = mma_wait(1, acc);
      });
      acc = held.get();
    } else {
      products();
    }
  }
  for (uint32_t k0 = 0; k0 < kK && !a_regs; k0 += 16)
    acc = b_kn      ? mma_async(tiles, swizzle128_rows(a_first, 0u, k0), swizzle128_rows_kn(b_first, k0, 64 * kK), acc)
          : swizzle ? mma_async(tiles, swizzle128_rows(a_first, 0u, k0), swizzle128_rows(b_first, 0u, k0), acc)
                    : mma_async(tiles, core_matrices(a_first, 0u, k0, kK), core_matrices(b_first, 0u, k0, kK), acc);
  // bad 4: a thread overwrites B while the products may still read it; 5: after the wait.
  auto overwrite_b = [&] { if_(tid() == 0u, [&] { store(tiles[lit(a_elems)], lit(a.elem, 0.0)); }); };
  if (bad == 4) {
    acc = mma_wait(1, acc);
    overwrite_b();
  }
  acc = mma_wait(0, acc);
  if (bad == 5) overwrite_b();
  for (uint32_t j = 0; j < n / 8; ++j)
    for (uint32_t e = 0; e < L::kCElements; ++e)
      store(d[(row0 + L::c_row(simd_lane(), e)) * n + j * 8 + L::c_col(simd_lane(), e)], acc.tile(j).v[e]);
}
const KernelDef& product_kernel() {
  static const KernelDef k = define_half_kernel("warpgroup_product", ir::Mode::Reduction, {"a", "w", "c", "d"},
                                                MTILE_HALF_VARIANTS(warpgroup_product));
  return k;
}

ir::Function product_ir(ScalarType t, uint32_t n, const Target& target, uint32_t bad = 0, uint32_t groups = 2,
                        uint32_t swizzle = 0, uint32_t b_kn = 0, uint32_t a_regs = 0) {
  Config cfg{{"n", n}, {"bad", bad}, {"groups", groups}, {"swizzle", swizzle}, {"b_kn", b_kn}, {"a_regs", a_regs}};
  return passes::run_pipeline(product_kernel().trace(t, cfg), target);
}

struct Product {
  std::vector<uint16_t> a, w;
  std::vector<float> c, d;
  std::string error;
};

Product run_product(ScalarType t, uint32_t n, uint32_t tpg, uint32_t bad = 0, uint32_t groups = 2, uint32_t swizzle = 0,
                    uint32_t b_kn = 0, uint32_t a_regs = 0) {
  const uint32_t m = groups * 64;
  std::mt19937 rng(n * 7 + tpg);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  Product p;
  for (uint32_t i = 0; i < m * kK; ++i) p.a.push_back(half_bits(t, u(rng)));
  for (uint32_t i = 0; i < n * kK; ++i) p.w.push_back(half_bits(t, u(rng)));
  for (uint32_t i = 0; i < m * n; ++i) p.c.push_back(u(rng));
  p.d.assign(size_t{m} * n, NAN);
  try {
    cpu::execute(product_ir(t, n, Target::cpu(), bad, groups, swizzle, b_kn, a_regs), geometry(1, tpg),
                 {{p.a.data(), t, p.a.size()},
                  {p.w.data(), t, p.w.size()},
                  {p.c.data(), ScalarType::f32, p.c.size()},
                  {p.d.data(), ScalarType::f32, p.d.size(), true}},
                 {0, 0, 0, 0}, {.sanitize = true});
  } catch (const Error& e) {
    p.error = e.what();
  }
  return p;
}

TEST(WarpgroupMma, TheEngineComputesEveryWarpgroupsProductForEveryNAndSwizzle) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (uint32_t n : {8u, 24u, 64u, 128u, 256u})
      for (uint32_t swizzle : {0u, 128u, 129u, 131u}) {  // +1: B stored [k][n]; +2: A from registers
        Product p = run_product(t, n, 256, 0, 2, swizzle & 128, swizzle & 1, (swizzle >> 1) & 1);
        ASSERT_EQ(p.error, "") << type_name(t) << " n " << n << " swizzle " << swizzle;
        size_t nonzero = 0;
        for (uint32_t r = 0; r < 128; ++r)
          for (uint32_t col = 0; col < n; ++col) {
            // Four mma_asyncs: each sums its 16 products onto C in f64 and rounds once to f32.
            double sum = p.c[r * n + col];
            for (uint32_t k0 = 0; k0 < kK; k0 += 16) {
              for (uint32_t k = k0; k < k0 + 16; ++k)
                sum += double{half_value(t, p.a[r * kK + k])} * half_value(t, p.w[col * kK + k]);
              sum = static_cast<float>(sum);
            }
            ASSERT_EQ(p.d[r * n + col], static_cast<float>(sum))
                << type_name(t) << " n " << n << " swizzle " << swizzle << " at " << r << ", " << col;
            nonzero += p.d[r * n + col] != 0.0f;
          }
        EXPECT_GT(nonzero, size_t{64} * n);
      }
}

TEST(WarpgroupMma, TheEngineRefusesPartWarpgroupsAndOperandsThatDifferOrAreMisaligned) {
  std::string part = run_product(ScalarType::bf16, 64, 64, 0, 1).error;
  EXPECT_TRUE(contains(part, "kernel warpgroup_product<bf16>")) << part;
  EXPECT_TRUE(contains(part, "mma_async in warpgroup 0 (threads 0..127) without all 128 of its threads")) << part;
  EXPECT_TRUE(contains(part, "threadgroup of 64 threads is not a whole number of 128-thread warpgroups")) << part;
  std::string differ = run_product(ScalarType::bf16, 64, 256, 1).error;
  EXPECT_TRUE(contains(differ, "mma_async operand 0 is 0 in thread 0 and 64 in thread 32")) << differ;
  std::string misaligned = run_product(ScalarType::bf16, 64, 256, 2).error;
  EXPECT_TRUE(contains(misaligned, "mma_async operand 0 (A)")) << misaligned;
  EXPECT_TRUE(contains(misaligned, "first index 4 must be a multiple of 8 elements")) << misaligned;
  // The sanitizer: B written while an mma_async may still read it, and the same write after the
  // wait (a race with the other warpgroup's read, as no barrier comes between).
  std::string in_flight = run_product(ScalarType::bf16, 64, 256, 4).error;
  EXPECT_TRUE(contains(in_flight, "which an mma_async still reads: its warpgroup must mma_wait for it first"))
      << in_flight;
  std::string after = run_product(ScalarType::bf16, 64, 256, 5).error;
  EXPECT_TRUE(contains(after, "race on threadgroup array")) << after;
  EXPECT_FALSE(contains(after, "still reads")) << after;
  std::string past_row = run_product(ScalarType::bf16, 64, 256, 3, 2, 128).error;
  EXPECT_TRUE(contains(past_row, "first index 56 starts 56 elements into a 64-element swizzled row")) << past_row;
  std::string kn_row = run_product(ScalarType::bf16, 64, 256, 6, 2, 128, 1).error;
  EXPECT_TRUE(contains(kn_row, "mma_async operand 3 (B, stored [k][n]) of threadgroup array %0")) << kn_row;
  EXPECT_TRUE(contains(kn_row, "first index 8256 is not a multiple of 512 elements")) << kn_row;
}

// An accumulator of 6 elements (n 12), an f32 array, A stored [k][n], B stored [k][n] unswizzled:
// trace errors naming the kernel.
template <int Case>
void bad_async(In<f32> x, Out<f32> y) {
  TgArray tiles = threadgroup_array(Case == 1 ? ScalarType::f32 : ScalarType::bf16, 4096);
  WarpgroupAcc acc = warpgroup_acc_zero(Case == 0 ? 12 : 64);
  CoreMatrices op{lit(0u), lit(64u), lit(128u)}, kn = op;
  kn.kn = true;
  acc = mma_wait(0, mma_async(tiles, Case == 2 ? kn : op, Case == 3 ? kn : op, acc));
  store(y[tid()], acc.v[0] + load(x[tid()]));
}
std::string trace_error(void (*fn)(In<f32>, Out<f32>)) {
  try {
    define_kernel("bad_async", ir::Mode::Reduction, {"x", "y"}, fn).trace(ScalarType::f32);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(WarpgroupMma, TheDslRefusesAnAccumulatorOfNoShapeAndFloatTiles) {
  std::string n12 = trace_error(&bad_async<0>);
  EXPECT_TRUE(contains(n12, "kernel bad_async<f32>") &&
              contains(n12, "an accumulator of 6 elements a thread is 64 x 12"))
      << n12;
  std::string f32 = trace_error(&bad_async<1>);
  EXPECT_TRUE(contains(f32, "A and B come from a threadgroup array of f32")) << f32;
  std::string a_kn = trace_error(&bad_async<2>);
  EXPECT_TRUE(contains(a_kn, "A is stored [m][k]; only B may be stored [k][n]")) << a_kn;
  std::string plain_kn = trace_error(&bad_async<3>);
  EXPECT_TRUE(contains(plain_kn, "B stored [k][n] is in swizzled 128-byte rows (swizzle 128), not swizzle 0"))
      << plain_kn;
}

TEST(WarpgroupMma, CudaPrintsWgmmaThatNvrtcCompilesForSm90aAndOtherTargetsRefuse) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16}) {
    std::string cuda = codegen::emit_cuda(product_ir(t, 128, Target::cuda("sm_90a")));
    std::string ty = type_name(t);
    EXPECT_TRUE(contains(cuda, fmt::format("wgmma.mma_async.sync.aligned.m64n128k16.f32.{0}.{0}", ty))) << cuda;
    EXPECT_TRUE(contains(cuda, "wgmma.fence.sync.aligned")) << cuda;
    EXPECT_TRUE(contains(cuda, "fence.proxy.async.shared::cta")) << cuda;
    EXPECT_TRUE(contains(cuda, "mt_mma_wait<0>();")) << cuda;
    EXPECT_TRUE(contains(cuda, "mt_fence_operand(")) << cuda;
  }
  // Swizzled operands: layout type 1 in the descriptors, the array aligned to 1024 bytes.
  std::string swizzled = codegen::emit_cuda(product_ir(ScalarType::bf16, 64, Target::cuda("sm_90a"), 0, 2, 128));
  EXPECT_TRUE(contains(swizzled, "mt_wgmma_desc<128>(")) << swizzled;
  // The array and the element index apart, not &array[index]: the array's part of the descriptor
  // is the same for every wgmma of a loop, and each adds only its index.
  EXPECT_FALSE(contains(swizzled, "mt_wgmma_desc<128>(&")) << swizzled;
  EXPECT_TRUE(contains(swizzled, "__shared__ __align__(1024) unsigned short")) << swizzled;
  // B stored [k][n]: imm-trans-b 1, its descriptor's leading byte offset the column blocks' stride.
  EXPECT_TRUE(contains(swizzled, "p, 1, 1, 0, 0;")) << swizzled;
  std::string kn = codegen::emit_cuda(product_ir(ScalarType::bf16, 128, Target::cuda("sm_90a"), 0, 2, 128, 1));
  EXPECT_TRUE(contains(kn, "p, 1, 1, 0, 1;")) << kn;
  EXPECT_TRUE(contains(kn, ", 4096u, 512u))")) << kn;
  // A from registers: four words, each held by an empty asm after the wait.
  std::string regs = codegen::emit_cuda(product_ir(ScalarType::bf16, 128, Target::cuda("sm_90a"), 0, 2, 128, 1, 1));
  EXPECT_TRUE(contains(regs, "m64n128k16.f32.bf16.bf16 {%0, %1")) << regs;
  EXPECT_TRUE(contains(regs, "{%64, %65, %66, %67}, %68, p, 1, 1, 1;")) << regs;
  EXPECT_TRUE(contains(regs, "_a3);")) << regs;
  std::string outside =
      error_of([] { codegen::emit_cuda(product_ir(ScalarType::bf16, 64, Target::cuda("sm_90a"), 7, 2, 128, 0, 1)); });
  EXPECT_TRUE(contains(outside, "kernel warpgroup_product<bf16>")) << outside;
  EXPECT_TRUE(contains(outside, "outside the block it was issued in")) << outside;
  EXPECT_TRUE(contains(codegen::emit_cuda(product_ir(ScalarType::bf16, 64, Target::cuda("sm_90a"))),
                       "__shared__ __align__(16) unsigned short"));
  ir::Function f = product_ir(ScalarType::bf16, 256, Target::cuda("sm_90a"), 0, 2, 128);
  std::string arch_msg = error_of([&] { cuda::compile_for_arch(f, "sm_80"); });
  EXPECT_TRUE(contains(arch_msg, "kernel warpgroup_product<bf16>: mma_async (wgmma) exists on sm_90a only"))
      << arch_msg;
  std::string msl_msg = error_of([] { codegen::emit_msl(product_ir(ScalarType::bf16, 64, Target::metal("apple9"))); });
  EXPECT_TRUE(contains(msl_msg, "mma_async (a warpgroup MMA over threadgroup memory, wgmma of sm_90a) has no lowering"))
      << msl_msg;
  EXPECT_FALSE(Target::metal("apple9").async_mma);
  EXPECT_FALSE(Target::cuda("sm_80").async_mma);
  EXPECT_TRUE(Target::cuda("sm_90a").async_mma);
  EXPECT_TRUE(Target::cpu().async_mma);
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  for (uint32_t b_kn : {0u, 1u, 3u}) {  // 3: B stored [k][n], A from registers
    cuda::NvrtcResult r = cuda::compile_for_arch(
        product_ir(ScalarType::bf16, 256, Target::cuda("sm_90a"), 0, 2, 128, b_kn & 1, b_kn >> 1), "sm_90a");
    EXPECT_GT(r.cubin.size(), 0u);
    // ptxas warns where it must serialize the wgmmas (an accumulator touched while in flight).
    EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
  }
}

}  // namespace
