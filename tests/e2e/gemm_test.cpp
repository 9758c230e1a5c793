// gemm's two bodies (kernels/linear/gemm.cpp, docs/kernels.md): which one the rule picks on each
// target, and the warpgroup body (mma_async) against the float64 reference on the CPU engine with
// its sanitizer, over edge shapes and every Config knob it has.
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;

namespace {

CheckResult check(const std::string& kernel, ScalarType t, const Shape& shape, const Config& config) {
  auto cpu = make_backend("cpu:sanitize");
  CheckOptions opts;
  opts.launch.config = config;
  return run_and_check(*cpu, find_kernel(kernel), t, shape, opts);
}

Shape gemm_shape(uint32_t m, uint32_t n, uint32_t k, uint32_t act = 0) {
  return {{"m", m}, {"n", n}, {"k", k}, {"act", act}};
}

TEST(Gemm, TheRuleTakesWarpgroupMmaWhereTheTargetHasItAndMIsPast64) {
  const KernelSpec& spec = find_kernel("gemm").spec();
  Resolved h100 = resolve(spec, gemm_shape(4096, 4096, 4096), Target::cuda("sm_90a"));
  // Tile copies (TMA) by a producer warp into four buffers, each step's products waited for.
  EXPECT_EQ(config_text(h100.config),
            "bk=64,bm=128,bn=256,pending=0,producers=1,stages=4,store_rows=1,swizzle=128,tma=1,warpgroup=1,"
            "warps_m=8,warps_n=1");
  EXPECT_EQ(h100.geometry.tpg, 288u);  // two warpgroups and the producer warp
  EXPECT_EQ(h100.geometry.grid[0], 16u);
  EXPECT_EQ(h100.geometry.grid[1], 32u);
  // 128 columns where that still makes at most one wave (here 4 x 32 threadgroups on 132 SMs).
  Resolved one_wave = resolve(spec, gemm_shape(512, 4096, 4096), Target::cuda("sm_90a"));
  EXPECT_EQ(one_wave.config.at("bn"), 128u);
  EXPECT_EQ(one_wave.config.at("stages"), 4u);
  EXPECT_EQ(one_wave.config.at("pending"), 0u);
  EXPECT_EQ(one_wave.geometry.tpg, 288u);
  EXPECT_EQ(resolve(spec, gemm_shape(1024, 4096, 4096), Target::cuda("sm_90a")).config.at("bn"), 256u);
  // 64 rows and fewer keep mma: a warpgroup's 64 rows would be mostly past m.
  EXPECT_EQ(resolve(spec, gemm_shape(64, 4096, 4096), Target::cuda("sm_90a")).config.at("warpgroup"), 0u);
  // No wgmma on the A100 nor on Apple GPUs; the CPU engine has it, with 128 columns in its 64 KiB.
  EXPECT_EQ(resolve(spec, gemm_shape(4096, 4096, 4096), Target::cuda("sm_80")).config.at("warpgroup"), 0u);
  EXPECT_EQ(resolve(spec, gemm_shape(4096, 4096, 4096), Target::metal("apple9")).config.at("warpgroup"), 0u);
  // Without tile copies (sm_90a's wgmma where a target lacked TMA) 256 columns in four buffers.
  Target no_tma = Target::cuda("sm_90a");
  no_tma.tile_copy = false;
  EXPECT_EQ(config_text(resolve(spec, gemm_shape(4096, 4096, 4096), no_tma).config),
            "bk=64,bm=128,bn=256,pending=1,producers=0,stages=4,store_rows=1,swizzle=128,tma=0,warpgroup=1,"
            "warps_m=8,warps_n=1");
  EXPECT_EQ(resolve(spec, gemm_shape(512, 4096, 4096), no_tma).config.at("producers"), 4u);
  // The CPU engine's 64 KiB hold two buffers of 128 x 128 but not the tile copies' mbarriers too.
  Resolved cpu = resolve(spec, gemm_shape(130, 70, 64), Target::cpu());
  EXPECT_EQ(config_text(cpu.config),
            "bk=64,bm=128,bn=128,pending=0,producers=0,stages=2,store_rows=1,swizzle=128,tma=0,warpgroup=1,"
            "warps_m=8,warps_n=1");
  Target roomier = Target::cpu();
  roomier.shared_memory_per_threadgroup = 96 * 1024;
  EXPECT_EQ(resolve(spec, gemm_shape(130, 70, 64), roomier).config.at("tma"), 1u);
}

TEST(Gemm, TheWarpgroupBodyMatchesTheReferenceForEveryKnob) {
  struct Case {
    const char* kernel;
    ScalarType t;
    Shape shape;
    Config config;
  };
  auto wg = [](uint32_t bm, uint32_t bn, uint32_t bk, uint32_t stages, uint32_t pending, uint32_t swizzle) {
    return Config{{"warpgroup", 1},
                  {"bm", bm},
                  {"bn", bn},
                  {"bk", bk},
                  {"stages", stages},
                  {"pending", pending},
                  {"swizzle", swizzle},
                  {"warps_m", bm / 16},
                  {"warps_n", 1},
                  {"producers", 0},
                  {"tma", 0}};
  };
  auto producers = [](Config c, uint32_t warps) {
    c["producers"] = warps;
    return c;
  };
  auto tiles = [](Config c) {  // one producer thread's tile copies
    c["producers"] = 1;
    c["tma"] = 1;
    return c;
  };
  auto fragments = [](Config c) {  // the epilogue that stores fragments, not rows
    c["store_rows"] = 0;
    return c;
  };
  for (const Case& c : std::vector<Case>{
           // k not a multiple of bk (a zero-filled tail), m and n past a tile's edge.
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 2), wg(128, 128, 64, 2, 0, 128)},
           {"gemm", ScalarType::f16, gemm_shape(200, 300, 1000, 1), wg(64, 64, 64, 3, 1, 128)},
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 0), wg(128, 128, 32, 4, 0, 0)},
           {"gemm", ScalarType::f16, gemm_shape(200, 300, 1000, 1), wg(128, 128, 32, 4, 1, 0)},
           // One warpgroup, n = 24 a mma_async, three buffers with one group in flight.
           {"gemm_residual", ScalarType::bf16, {{"m", 100}, {"n", 72}, {"k", 48}}, wg(64, 24, 16, 3, 1, 0)},
           {"gemm_residual", ScalarType::f16, {{"m", 100}, {"n", 72}, {"k", 48}}, wg(64, 24, 64, 3, 1, 128)},
           {"gemm_bias", ScalarType::f16, gemm_shape(65, 8, 8, 1), wg(64, 8, 64, 2, 0, 128)},
           // Fewer steps than the fills run ahead.
           {"gemm_bias", ScalarType::bf16, gemm_shape(129, 40, 24, 0), wg(128, 40, 32, 4, 1, 0)},
           // Producer warps (gemm_producer_body): edge tiles and a K tail, whole tiles only (no
           // bounds), one warpgroup with four producers, fewer steps than buffers.
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 2), producers(wg(128, 64, 64, 2, 0, 128), 1)},
           {"gemm", ScalarType::f16, gemm_shape(200, 300, 1000, 1), producers(wg(64, 64, 64, 3, 1, 128), 2)},
           {"gemm", ScalarType::bf16, gemm_shape(128, 256, 512, 0), producers(wg(64, 64, 64, 3, 1, 128), 1)},
           {"gemm_residual",
            ScalarType::f16,
            {{"m", 100}, {"n", 72}, {"k", 48}},
            producers(wg(64, 24, 64, 3, 1, 128), 4)},
           {"gemm_bias", ScalarType::bf16, gemm_shape(129, 40, 24, 0), producers(wg(128, 40, 64, 3, 1, 128), 1)},
           // The rule's epilogue stores rows through threadgroup memory (16-byte chunks where n is a
           // multiple of 8: n 256 and 72; a chunk across n at 300); store_rows 0 the fragments.
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 2), fragments(wg(128, 128, 64, 2, 0, 128))},
           // Buffers smaller than the tile of out (2 x 256 x 16 elements against 128 x 136).
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 2), wg(128, 128, 16, 2, 0, 0)},
           {"gemm_residual", ScalarType::bf16, {{"m", 100}, {"n", 72}, {"k", 48}}, fragments(wg(64, 24, 16, 3, 1, 0))},
           {"gemm", ScalarType::f16, gemm_shape(200, 300, 1000, 1), fragments(producers(wg(64, 64, 64, 3, 1, 128), 2))},
           // Tile copies: rows past m and n and columns past k arrive as zeros; one or two steps'
           // buffers; fewer steps than buffers; the fragments' epilogue.
           {"gemm", ScalarType::bf16, gemm_shape(200, 300, 1000, 2), tiles(wg(128, 64, 64, 2, 0, 128))},
           {"gemm", ScalarType::f16, gemm_shape(130, 70, 72, 1), tiles(wg(64, 64, 64, 3, 1, 128))},
           {"gemm_bias", ScalarType::bf16, gemm_shape(129, 40, 24, 0), tiles(wg(128, 40, 64, 3, 1, 128))},
           {"gemm_residual", ScalarType::bf16, {{"m", 100}, {"n", 72}, {"k", 48}}, tiles(wg(64, 24, 64, 3, 0, 128))},
           {"gemm", ScalarType::f16, gemm_shape(65, 256, 200, 0), fragments(tiles(wg(64, 128, 64, 2, 0, 128)))},
       }) {
    CheckResult r = check(c.kernel, c.t, c.shape, c.config);
    EXPECT_TRUE(r.passed) << c.kernel << " " << config_text(c.config) << ": " << r.summary();
  }
}

TEST(Gemm, TheWarpgroupBodysContractIsCheckedBeforeALaunch) {
  auto refused = [](const Config& config) {
    try {
      check("gemm", ScalarType::bf16, gemm_shape(130, 64, 64), config);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("launched");
  };
  // A warpgroup's 64 rows: warps_m must be bm / 16 and bm a multiple of 64.
  std::string warps = refused({{"warpgroup", 1}, {"bm", 128}, {"warps_m", 2}, {"warps_n", 4}});
  EXPECT_TRUE(contains(warps, "kernel gemm")) << warps;
  EXPECT_TRUE(contains(warps, "warps_m == bm / 16")) << warps;
  std::string stages = refused({{"warpgroup", 1}, {"pending", 1}, {"stages", 2}});
  EXPECT_TRUE(contains(stages, "stages >= 2 + pending")) << stages;
  std::string rows = refused({{"warpgroup", 1}, {"bk", 32}});  // swizzled rows are K 64
  EXPECT_TRUE(contains(rows, "bk == 64")) << rows;
  // Producer warps fill swizzled rows, 1, 2 or 4 of them.
  std::string three = refused({{"warpgroup", 1}, {"producers", 3}});
  EXPECT_TRUE(contains(three, "producers == 1")) << three;
  std::string plain = refused({{"warpgroup", 1}, {"swizzle", 0}, {"bk", 64}, {"producers", 1}});
  EXPECT_TRUE(contains(plain, "swizzle == 128")) << plain;
  // Tile copies need a producer warp and the swizzled rows.
  std::string lone = refused({{"warpgroup", 1}, {"tma", 1}, {"producers", 0}});
  EXPECT_TRUE(contains(lone, "producers >= 1")) << lone;
  std::string unswizzled = refused({{"warpgroup", 1}, {"tma", 1}, {"swizzle", 0}, {"producers", 0}});
  EXPECT_TRUE(contains(unswizzled, "tma == 0")) << unswizzled;
  // Rows through threadgroup memory are the warpgroup bodies' epilogue.
  std::string rows_mma = refused({{"warpgroup", 0}, {"store_rows", 1}});
  EXPECT_TRUE(contains(rows_mma, "store_rows == 0")) << rows_mma;
}

}  // namespace
