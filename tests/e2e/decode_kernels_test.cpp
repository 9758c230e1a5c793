// gemv and attention_decode (kernels/linear, kernels/attention): what their designs promise beyond
// the float64 checks kernels_test runs on every dtype and test shape: every decode batch size and
// split count, 16-byte loads of w, K and V, 64-bit offsets past 2^31 elements, the split rule, the
// ticket's fences and atomics, counters left at zero over repeated launches, and contracts that
// refuse what the kernels can't do.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "backends/cuda/nvrtc.hpp"
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;

namespace {

int count(const ir::Function& f, const std::function<bool(const ir::Inst&)>& pred) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += pred(in) ? 1 : 0; });
  return n;
}

// The kernel lowered for `target` as a launch lowers it: Config from the rules (and `config`),
// constexprs baked, u64 offsets for the tensors past 2^31 elements.
ir::Function lowered(const std::string& kernel, ScalarType t, const Shape& shape, const Target& target,
                     const Config& config = {}) {
  const Kernel& k = find_kernel(kernel);
  Resolved r = resolve(k.spec(), shape, target, config, {}, t);
  passes::PipelineOptions o;
  o.bake = r.constexprs;
  o.wide = wide_tensors(r);
  o.tpg = r.geometry.tpg;
  return passes::run_pipeline(k->def.trace(t, r.config), target, o);
}

int barriers(const ir::Function& f) {
  return count(f, [](const ir::Inst& in) { return in.op == ir::Op::Barrier; });
}

CheckResult check(const std::string& kernel, ScalarType t, const Shape& shape, const Config& config = {}) {
  auto cpu = make_backend("cpu:sanitize");
  CheckOptions opts;
  opts.launch.config = config;
  return run_and_check(*cpu, find_kernel(kernel), t, shape, opts);
}

std::string contract_error(const std::string& kernel, const Shape& shape, const Config& config = {}) {
  try {
    check(kernel, ScalarType::bf16, shape, config);
  } catch (const Error& e) {
    return e.what();
  }
  return "launched";
}

// Accesses of tensor `name` in `f`: vector ones of `lanes` lanes, and all of them.
std::pair<int, int> accesses(const ir::Function& f, const std::string& name, int lanes) {
  int param = f.param_index(name), vec = 0, all = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    bool access =
        in.op == ir::Op::Load || in.op == ir::Op::LoadVector || in.op == ir::Op::Store || in.op == ir::Op::StoreVector;
    if (!access || in.space != ir::MemSpace::Device || in.param != param) return;
    ++all;
    vec += in.op == ir::Op::LoadVector && in.lanes == lanes;
  });
  return {vec, all};
}

int u64_values(const ir::Function& f) {  // 64-bit offsets (not the u64 arrays of mbarriers)
  return count(f, [](const ir::Inst& in) { return in.type == ScalarType::u64 && in.op != ir::Op::TgArrayDecl; });
}

void nvrtc_compiles(const ir::Function& f, const std::string& name) {
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  EXPECT_GT(cuda::nvrtc_compile(codegen::emit_cuda(f), name + ".cu", "sm_90a").cubin.size(), 0u);
}

const Shape kGemvSmall = {{"m", 1}, {"n", 4096}, {"k", 4096}};

TEST(Gemv, EveryDecodeBatchSizeAndAnOddNumberOfColumns) {
  for (uint32_t m = 1; m <= 8; ++m)
    for (ScalarType t : {ScalarType::f32, ScalarType::bf16}) {
      CheckResult r = check("gemv", t, {{"m", m}, {"n", 37}, {"k", 776}});
      EXPECT_TRUE(r.passed) << r.summary();
    }
}

TEST(Gemv, TwoColumnsASimdgroupAndNoUnrollGiveTheSameSums) {
  // The rule's other choices, forced: each with n not a multiple of the columns a threadgroup takes.
  for (const Config& c : std::vector<Config>{{{"cols", 2}}, {{"cols", 3}, {"unroll", 1}}, {{"unroll", 4}}}) {
    CheckResult r = check("gemv", ScalarType::f16, {{"m", 3}, {"n", 29}, {"k", 2056}}, c);
    EXPECT_TRUE(r.passed) << r.summary();
  }
}

TEST(Gemv, SimdgroupsSharingColumnsGiveTheSameSums) {
  // ksplit simdgroups a column group, each taking every ksplit-th chunk of k, their sums added
  // through threadgroup memory (the sanitizer checks the barrier): k with a partial unrolled trip
  // and a remainder, n not a multiple of the columns a threadgroup takes.
  for (Config c : std::vector<Config>{
           {{"ksplit", 2}}, {{"ksplit", 4}}, {{"ksplit", 4}, {"cols", 1}}, {{"ksplit", 2}, {"unroll", 1}, {"cols", 3}}})
    for (uint32_t m : {1u, 5u, 8u}) {
      c["mma"] = 0;  // the FMA body (the rule takes tensor cores past m 4)
      CheckResult r = check("gemv", ScalarType::bf16, {{"m", m}, {"n", 29}, {"k", 2056}}, c);
      EXPECT_TRUE(r.passed) << r.summary();
    }
  EXPECT_TRUE(contains(contract_error("gemv", kGemvSmall, {{"ksplit", 3}}), "threads / simd_width % ksplit == 0"))
      << contract_error("gemv", kGemvSmall, {{"ksplit", 3}});
}

TEST(Gemv, RotatedWalksOverKGiveTheSameSums) {
  // Each column group starts its unrolled trips at trip g % trips and wraps: k with several trips
  // and a partial one after them, one trip and none (k below a trip), with and without ksplit,
  // unroll and more columns a simdgroup; n not a multiple of the columns a threadgroup takes.
  for (Config c : std::vector<Config>{{}, {{"ksplit", 2}, {"cols", 2}}, {{"unroll", 1}}, {{"unroll", 4}, {"cols", 3}}})
    for (uint32_t k : {2056u, 512u, 136u})
      for (uint32_t m : {1u, 3u}) {
        c["rotate"] = 1;
        CheckResult r = check("gemv", ScalarType::bf16, {{"m", m}, {"n", 29}, {"k", k}}, c);
        EXPECT_TRUE(r.passed) << config_text(c) << " k " << k << ": " << r.summary();
      }
  // gemv_tiles from step g % steps: k of one step, of a partial last step, of several.
  for (uint32_t k : {64u, 1000u, 4104u})
    for (ScalarType t : {ScalarType::bf16, ScalarType::f16}) {
      Config c = {{"mma", 1}, {"tma", 1}, {"ksplit", 2}, {"stages", 3}, {"rotate", 1}};
      CheckResult r = check("gemv", t, {{"m", 7}, {"n", 70}, {"k", k}}, c);
      EXPECT_TRUE(r.passed) << "gemv_tiles k " << k << ": " << r.summary();
    }
  EXPECT_TRUE(
      contains(contract_error("gemv", {{"m", 8}, {"n", 29}, {"k", 64}}, {{"mma", 1}, {"tma", 0}, {"rotate", 1}}),
               "rotate == 0 || mma == 0 || tma == 1"));
}

TEST(Gemv, TheTensorCoreBodyGivesTheSameSums) {
  // gemv_mma: 16 columns a group of ksplit simdgroups, four consecutive elements of k standing for
  // a lane's four k-slots. n not a multiple of 16, k with a partial 32-element chunk (2056) or only
  // one piece (8), one part, parts that don't divide the chunks, one and four chunks a trip, and
  // fewer rows of x than B's 8 columns.
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (uint32_t k : {2056u, 8u})
      for (const Config& c :
           std::vector<Config>{{}, {{"ksplit", 1}}, {{"ksplit", 3}}, {{"ksplit", 5}, {"unroll", 4}}, {{"unroll", 1}}})
        for (uint32_t m : {8u, 5u}) {
          CheckResult r = check("gemv", t, {{"m", m}, {"n", 29}, {"k", k}}, c);
          EXPECT_TRUE(r.passed) << config_text(c) << " m " << m << " k " << k << ": " << r.summary();
        }
  for (uint32_t m : {1u, 4u}) {  // the rule's FMA body there, tensor cores forced
    CheckResult r = check("gemv", ScalarType::bf16, {{"m", m}, {"n", 40}, {"k", 1000}}, {{"mma", 1}});
    EXPECT_TRUE(r.passed) << r.summary();
  }
  // gemv_tiles: w and x by tile copies through 2-4 buffers (zeros past k, n and m): k of a partial
  // 64-element block and of one block of 8, steps that pass k, one to five simdgroups, n past 16.
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (auto [m, n, k, parts, stages] : {std::tuple{8u, 29u, 2056u, 4u, 3u},
                                          {5u, 40u, 1000u, 1u, 2u},
                                          {1u, 16u, 8u, 2u, 4u},
                                          {7u, 67u, 4104u, 5u, 2u}}) {
      Config c{{"mma", 1}, {"tma", 1}, {"ksplit", parts}, {"stages", stages}};
      CheckResult r = check("gemv", t, {{"m", m}, {"n", n}, {"k", k}}, c);
      EXPECT_TRUE(r.passed) << type_name(t) << " " << config_text(c) << " m " << m << " n " << n << " k " << k << ": "
                            << r.summary();
    }
  EXPECT_NE(contract_error("gemv", {{"m", 8}, {"n", 29}, {"k", 64}}, {{"mma", 1}, {"tma", 1}}).find("stages >= 2"),
            std::string::npos);
  // The rule: tensor cores for bf16 and f16 past m 4; f32 (and a caller that names no dtype) the
  // FMA body, and f32 refuses them by name.
  const KernelSpec& spec = find_kernel("gemv").spec();
  const Target tiles = Target::cuda("sm_90a");
  Target h100 = tiles;  // without tile copies: gemv_mma's loads
  h100.tile_copy = false;
  const Shape m8 = {{"m", 8}, {"n", 4096}, {"k", 4096}};
  Resolved half = resolve(spec, m8, h100, {}, {}, ScalarType::bf16);
  EXPECT_EQ(half.config.at("mma"), 1u);
  EXPECT_EQ(half.config.at("ksplit"), 16u);  // 256 column groups, half of 132 x 64 simdgroups
  EXPECT_EQ(half.geometry.tpg, 512u);
  EXPECT_EQ(half.config.at("tma"), 0u);
  // With tile copies: 8 simdgroups and 3 buffers up to two column groups an SM, else 4 and 4.
  Resolved tiled = resolve(spec, m8, tiles, {}, {}, ScalarType::bf16);
  EXPECT_EQ(config_text(tiled.config), "cols=16,ksplit=8,m_rows=8,mma=1,rotate=1,stages=3,threads=256,tma=1,unroll=2");
  Resolved many = resolve(spec, {{"m", 8}, {"n", 14336}, {"k", 4096}}, tiles, {}, {}, ScalarType::bf16);
  EXPECT_EQ(many.config.at("ksplit"), 4u);
  EXPECT_EQ(many.config.at("stages"), 4u);
  EXPECT_EQ(many.config.at("tma"), 1u);
  EXPECT_EQ(resolve(spec, m8, Target::cpu(), {}, {}, ScalarType::bf16).config.at("tma"), 0u);  // 64 KiB
  EXPECT_EQ(resolve(spec, kGemvSmall, h100, {}, {}, ScalarType::bf16).config.at("mma"), 0u);
  EXPECT_EQ(resolve(spec, m8, h100, {}, {}, ScalarType::f32).config.at("mma"), 0u);
  EXPECT_EQ(resolve(spec, m8, h100).config.at("mma"), 0u);
  try {
    check("gemv", ScalarType::f32, {{"m", 8}, {"n", 29}, {"k", 64}}, {{"mma", 1}});
    ADD_FAILURE() << "f32 launched with mma 1";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "Config mma 1 multiplies bf16 or f16")) << e.what();
  }
}

TEST(Gemv, ReadsWInSixteenByteLoadsOnly) {
  Target loads = Target::cuda("sm_90a");
  loads.tile_copy = false;  // gemv_mma at m 8 (below: tile copies)
  for (uint32_t m : {1u, 8u}) {
    Shape s = kGemvSmall;
    s["m"] = m;
    ir::Function f = lowered("gemv", ScalarType::bf16, s, loads);
    auto [w_vec, w_all] = accesses(f, "w", 8);
    auto [x_vec, x_all] = accesses(f, "x", 8);
    EXPECT_GT(w_vec, 0) << ir::print(f);
    EXPECT_EQ(w_vec, w_all) << ir::print(f);
    EXPECT_EQ(x_vec, x_all) << ir::print(f);
    std::string src = codegen::emit_cuda(f);
    EXPECT_TRUE(contains(src, "uint4")) << src;
  }
  // f32: 8 elements are two 16-byte loads.
  ir::Function f32 = lowered("gemv", ScalarType::f32, kGemvSmall, Target::cuda("sm_90a"));
  auto [w_vec, w_all] = accesses(f32, "w", 4);
  EXPECT_EQ(w_vec, w_all) << ir::print(f32);
  // With tile copies (m 8 on sm_90): w and x only by copy_tile.
  Shape s = kGemvSmall;
  s["m"] = 8;
  ir::Function tiled = lowered("gemv", ScalarType::bf16, s, Target::cuda("sm_90a"));
  EXPECT_EQ(accesses(tiled, "w", 8).second, 0) << ir::print(tiled);
  EXPECT_EQ(accesses(tiled, "x", 8).second, 0) << ir::print(tiled);
  EXPECT_TRUE(contains(codegen::emit_cuda(tiled), "mt_copy_tile2("));
  nvrtc_compiles(tiled, "gemv_tiles");
}

TEST(Gemv, OffsetsOfWAre64BitPast2To31ElementsAndNvrtcCompilesThem) {
  Target cuda = Target::cuda("sm_90a");
  cuda.tile_copy = false;  // loads from w; tile copies (below) address it by coordinates
  EXPECT_EQ(u64_values(lowered("gemv", ScalarType::bf16, kGemvSmall, cuda)), 0);
  // 151936 x 14336 = 2.18e9 elements (a vocabulary-sized w of a wide model).
  ir::Function huge = lowered("gemv", ScalarType::bf16, {{"m", 2}, {"n", 151936}, {"k", 14336}}, cuda);
  EXPECT_GT(u64_values(huge), 0) << ir::print(huge);
  EXPECT_TRUE(contains(codegen::emit_cuda(huge), "unsigned long long"));
  nvrtc_compiles(huge, "gemv_wide");
  // The tensor-core body (m 8) the same.
  ir::Function huge_mma = lowered("gemv", ScalarType::bf16, {{"m", 8}, {"n", 151936}, {"k", 14336}}, cuda);
  EXPECT_TRUE(contains(codegen::emit_cuda(huge_mma), "mma.sync"));
  EXPECT_GT(u64_values(huge_mma), 0) << ir::print(huge_mma);
  nvrtc_compiles(huge_mma, "gemv_mma_wide");
  ir::Function huge_tiles =
      lowered("gemv", ScalarType::bf16, {{"m", 8}, {"n", 151936}, {"k", 14336}}, Target::cuda("sm_90a"));
  EXPECT_TRUE(contains(codegen::emit_cuda(huge_tiles), "mt_copy_tile2("));
  EXPECT_EQ(u64_values(huge_tiles), 0) << ir::print(huge_tiles);
  nvrtc_compiles(huge_tiles, "gemv_tiles_wide");
}

TEST(Gemv, ContractRefusesKNotAMultipleOf8AndMoreThan8Rows) {
  std::string e = contract_error("gemv", {{"m", 1}, {"n", 16}, {"k", 12}});
  EXPECT_TRUE(contains(e, "kernel gemv: contract violated")) << e;
  EXPECT_TRUE(contains(e, "k % 8 == 0 (k = 12)")) << e;
  e = contract_error("gemv", {{"m", 9}, {"n", 16}, {"k", 16}});
  EXPECT_TRUE(contains(e, "m <= 8 (m = 9)")) << e;
  e = contract_error("gemv", {{"m", 2}, {"n", 16}, {"k", 16}}, {{"m_rows", 1}});
  EXPECT_TRUE(contains(e, "m_rows == m")) << e;
}

TEST(Gemv, ColumnsASimdgroupFollowTheDevice) {
  const Kernel& k = find_kernel("gemv");
  Target h100 = Target::cuda("sm_90a");  // 132 SMs x 64 simdgroups = 8448
  // m <= 3 with rows of 4096 or more: a column a threadgroup, its four simdgroups reading the row.
  EXPECT_EQ(resolve(k.spec(), kGemvSmall, h100).config.at("cols"), 1u);
  EXPECT_EQ(resolve(k.spec(), kGemvSmall, h100).config.at("ksplit"), 4u);
  EXPECT_EQ(resolve(k.spec(), {{"m", 1}, {"n", 14336}, {"k", 4096}}, h100).config.at("ksplit"), 4u);
  EXPECT_EQ(resolve(k.spec(), kGemvSmall, h100).config.at("unroll"), 2u);
  // Shorter rows, or m 3 with n past the device's simdgroups: a column (or two) a simdgroup.
  EXPECT_EQ(resolve(k.spec(), {{"m", 1}, {"n", 4096}, {"k", 1024}}, h100).config.at("ksplit"), 1u);
  Resolved m3 = resolve(k.spec(), {{"m", 3}, {"n", 14336}, {"k", 4096}}, h100);
  EXPECT_EQ(m3.config.at("cols"), 2u);
  EXPECT_EQ(m3.config.at("ksplit"), 2u);
  Resolved r = resolve(k.spec(), {{"m", 8}, {"n", 4096}, {"k", 4096}}, h100);
  EXPECT_EQ(r.config.at("cols"), 4u);    // a chunk of x for four rows of w (H100: 25.7 us vs 35.3 at two)
  EXPECT_EQ(r.config.at("ksplit"), 4u);  // the four simdgroups of a threadgroup share its 4 columns
  EXPECT_EQ(r.config.at("unroll"), 1u);
  EXPECT_EQ(r.geometry.grid[0], 1024u);  // 4 columns a threadgroup of 128 threads
  EXPECT_EQ(r.geometry.tpg, 128u);
  EXPECT_EQ(resolve(k.spec(), {{"m", 4}, {"n", 4096}, {"k", 4096}}, h100).config.at("ksplit"), 2u);
}

TEST(Gemv, TheFmaBodyRotatesItsWalkWhereRowsTakeFewTrips) {
  const Kernel& k = find_kernel("gemv");
  Target h100 = Target::cuda("sm_90a");
  auto rotate = [&](uint32_t m, uint32_t n, uint32_t kk) {
    return resolve(k.spec(), {{"m", m}, {"n", n}, {"k", kk}}, h100).config.at("rotate");
  };
  EXPECT_EQ(rotate(1, 4096, 4096), 1u);   // 2 trips of 2048 elements (four simdgroups a column)
  EXPECT_EQ(rotate(1, 4096, 14336), 1u);  // 7 trips of 2048
  EXPECT_EQ(rotate(1, 4096, 1024), 1u);   // 2 trips of 512 (a column a simdgroup)
  EXPECT_EQ(rotate(4, 4096, 14336), 0u);  // 28 trips of 512: the simdgroups drift apart anyway
  EXPECT_EQ(rotate(4, 4096, 4096), 1u);   // 8 trips of 512 (one chunk a trip, two simdgroups a group)
  // gemv_tiles (bf16: tensor cores past m 4): 8 steps of 8 blocks of 64 at k 4096, 28 at 14336.
  auto tiles = [&](uint32_t n, uint32_t kk) {
    Resolved r = resolve(k.spec(), {{"m", 8}, {"n", n}, {"k", kk}}, h100, {}, {}, ScalarType::bf16);
    EXPECT_EQ(r.config.at("tma"), 1u);
    return r.config.at("rotate");
  };
  EXPECT_EQ(tiles(4096, 4096), 1u);
  EXPECT_EQ(tiles(4096, 14336), 0u);
  EXPECT_EQ(tiles(14336, 4096), 0u);  // 16 steps of 4 blocks
}

const Shape kAttn = {{"batch", 2}, {"heads", 8}, {"kv_heads", 2}, {"seq", 1000}, {"d", 64}};

TEST(AttentionDecode, EverySplitCountMatchesTheReference) {
  // Up to split_cap = ceil(1000 / 64) = 16; 16 splits of 63 rows leave the last one 55. Both
  // threadgroup sizes the rule picks, and rows 1, 2 and 4 a team in flight.
  for (uint32_t threads : {256u, 128u})
    for (uint32_t splits : {1u, 2u, 3u, 7u, 16u})
      for (uint32_t tile : {1u, 2u, 4u}) {
        if (threads == 128 && tile == 2) continue;  // the 256-thread cases cover tile 2
        CheckResult r = check("attention_decode", ScalarType::f32, kAttn,
                              {{"splits", splits}, {"threads", threads}, {"tile", tile}});
        EXPECT_TRUE(r.passed) << threads << " threads, " << splits << " splits, tile " << tile << ": " << r.summary();
        ASSERT_EQ(r.outputs.size(), 2u) << r.summary();  // out and counters; the workspace is scratch
        EXPECT_EQ(r.outputs[1].param, "counters");
        EXPECT_EQ(r.outputs[1].max_abs, 0.0) << "a counter was left non-zero";
      }
}

// The last threadgroup's merge with many splits: each thread folds kMergeLoads (16) splits' (m, l)
// and columns at a time into its running sums, rescaled as the max moves (32 to 128 splits: 2 to 8
// batches; 33 and 100: the last partly past the splits).
TEST(AttentionDecode, TheMergeOfManySplitsMatchesTheReference) {
  const Shape long_seq = {{"batch", 1}, {"heads", 8}, {"kv_heads", 2}, {"seq", 8200}, {"d", 128}};
  const Shape narrow = {{"batch", 2}, {"heads", 2}, {"kv_heads", 2}, {"seq", 8200}, {"d", 72}};
  for (const Shape& s : {long_seq, narrow})
    for (uint32_t threads : {256u, 128u})
      for (uint32_t splits : {32u, 33u, 100u, 128u}) {
        Config config = {{"splits", splits}, {"threads", threads}, {"tile", 1}};
        CheckResult r = check("attention_decode", ScalarType::f32, s, config);
        EXPECT_TRUE(r.passed) << shape_text(s) << " " << config_text(config) << ": " << r.summary();
        ASSERT_EQ(r.outputs.size(), 2u) << r.summary();
        EXPECT_EQ(r.outputs[1].max_abs, 0.0) << "a counter was left non-zero";
      }
}

TEST(AttentionDecode, GroupsHeadDimsAndTheirTilesMatchTheReference) {
  for (const Shape& s : std::vector<Shape>{
           {{"batch", 1}, {"heads", 16}, {"kv_heads", 2}, {"seq", 77}, {"d", 32}},      // group 8
           {{"batch", 2}, {"heads", 4}, {"kv_heads", 4}, {"seq", 130}, {"d", 136}},     // 17 chunks in 32 lanes
           {{"batch", 1}, {"heads", 2}, {"kv_heads", 1}, {"seq", 70}, {"d", 512}},      // 2 chunks a lane
           {{"batch", 1}, {"heads", 16}, {"kv_heads", 1}, {"seq", 140}, {"d", 72}}}) {  // 128 threads
    EXPECT_EQ(resolve(find_kernel("attention_decode").spec(), s, Target::cpu()).config.at("threads"),
              s.at("heads") / s.at("kv_heads") * s.at("d") > 1024 ? 128u : 256u);
    for (uint32_t splits : {1u, 2u}) {
      CheckResult r = check("attention_decode", ScalarType::bf16, s, {{"splits", splits}});
      EXPECT_TRUE(r.passed) << r.summary();
    }
  }
  CheckResult r = check("attention_decode", ScalarType::f16, kAttn, {{"splits", 3}, {"tile", 3}});
  EXPECT_TRUE(r.passed) << r.summary();
}

// Stages >= 2: K and V through threadgroup buffers that copy_async fills a trip or more ahead.
// Splits whose rows are not whole trips (1000 / 7 = 143), one split shorter than a trip (seq 7),
// and head dims whose lanes cover more columns than d (72: 128, 136: 256), whose padding the
// copies never write.
TEST(AttentionDecode, KAndVThroughThreadgroupBuffersMatchTheReference) {
  struct Case {
    ScalarType t;
    uint32_t threads, tile, stages;
  };
  for (const Case& c : std::vector<Case>{{ScalarType::f32, 256, 1, 2},
                                         {ScalarType::f32, 256, 1, 3},
                                         {ScalarType::f32, 128, 2, 2},
                                         {ScalarType::f32, 128, 2, 3},
                                         {ScalarType::bf16, 128, 4, 2},
                                         {ScalarType::f16, 64, 1, 5}})
    for (uint32_t splits : {1u, 7u, 16u})
      for (uint32_t own : {0u, 1u}) {
        Config config = {
            {"splits", splits}, {"threads", c.threads}, {"tile", c.tile}, {"stages", c.stages}, {"own_copies", own}};
        CheckResult r = check("attention_decode", c.t, kAttn, config);
        EXPECT_TRUE(r.passed) << type_name(c.t) << " " << config_text(config) << ": " << r.summary();
        ASSERT_EQ(r.outputs.size(), 2u) << r.summary();
        EXPECT_EQ(r.outputs[1].max_abs, 0.0) << "a counter was left non-zero";
      }
  for (const Shape& s : std::vector<Shape>{{{"batch", 2}, {"heads", 4}, {"kv_heads", 1}, {"seq", 7}, {"d", 128}},
                                           {{"batch", 1}, {"heads", 4}, {"kv_heads", 2}, {"seq", 300}, {"d", 72}},
                                           {{"batch", 2}, {"heads", 4}, {"kv_heads", 4}, {"seq", 130}, {"d", 136}}})
    for (uint32_t splits : {1u, 2u})
      for (uint32_t own : {0u, 1u}) {
        splits = std::min<uint32_t>(splits, (s.at("seq") + 63) / 64);  // 64 rows a split at least
        Config config = {{"splits", splits}, {"stages", 2}, {"tile", 1}, {"own_copies", own}};
        CheckResult r = check("attention_decode", ScalarType::bf16, s, config);
        EXPECT_TRUE(r.passed) << config_text(config) << ": " << r.summary();
      }
  // With own_copies each thread copies the chunks it reads (lanes past d into their own places past
  // it), so the loop has no barrier: the sanitizer above finds no thread reading another's copy.
  const Shape d72 = {{"batch", 1}, {"heads", 4}, {"kv_heads", 2}, {"seq", 300}, {"d", 72}};
  const Target h100 = Target::cuda("sm_90a");
  EXPECT_EQ(barriers(lowered("attention_decode", ScalarType::bf16, d72, h100, {{"stages", 2}, {"own_copies", 1}})) + 1,
            barriers(lowered("attention_decode", ScalarType::bf16, d72, h100, {{"stages", 2}, {"own_copies", 0}})));
  EXPECT_NE(contract_error("attention_decode", kAttn, {{"stages", 1}}).find("stages"), std::string::npos);
}

// Two buffers where copies are asynchronous, a split takes at least 4 trips and two threadgroups'
// buffers fit an SM; the direct loads elsewhere. Staged, each thread copies what it reads.
TEST(AttentionDecode, StagesFollowTheTargetAndTheTripsASplit) {
  const KernelSpec& spec = find_kernel("attention_decode").spec();
  auto chosen = [&](uint32_t batch, uint32_t seq, const Target& t, ScalarType dtype, const char* name) {
    Shape s = {{"batch", batch}, {"heads", 32}, {"kv_heads", 8}, {"seq", seq}, {"d", 128}};
    return resolve(spec, s, t, {}, {}, dtype).config.at(name);
  };
  auto stages = [&](uint32_t batch, uint32_t seq, const Target& t, ScalarType dtype = ScalarType::bf16) {
    uint32_t st = chosen(batch, seq, t, dtype, "stages");
    const bool fma = chosen(batch, seq, t, dtype, "mma") == 0;  // own_copies is the FMA body's
    EXPECT_EQ(chosen(batch, seq, t, dtype, "own_copies"), fma && st >= 2 ? 1u : 0u)
        << "batch " << batch << " seq " << seq;
    return st;
  };
  const Target tiles = Target::cuda("sm_90a"), a100 = Target::cuda("sm_80"), m3 = Target::metal("apple9");
  Target h100 = tiles;  // the H100 without tile copies: the copy_async forms
  h100.tile_copy = false;
  EXPECT_TRUE(h100.async_copy);
  EXPECT_TRUE(a100.async_copy);
  EXPECT_FALSE(m3.async_copy);
  // With tile copies the tensor-core body takes two buffers where its threadgroups fit a wave at
  // two an SM (256 of 264), three past it (512).
  for (auto [batch, seq] : {std::pair{8u, 4096u}, {32u, 4096u}, {1u, 32768u}})
    EXPECT_EQ(stages(batch, seq, tiles), 2u) << batch << " x " << seq;
  EXPECT_EQ(stages(64, 32768, tiles), 3u);
  EXPECT_EQ(stages(1, 4096, tiles), 0u);  // short splits: the single-buffered form
  EXPECT_EQ(stages(1, 32768, h100), 2u);  // the tensor-core body's two buffers (1024 rows a split)
  EXPECT_EQ(stages(8, 4096, h100), 2u);   // the same, 4 splits
  EXPECT_EQ(stages(32, 4096, h100), 2u);
  EXPECT_EQ(stages(64, 32768, h100), 2u);
  EXPECT_EQ(stages(1, 4096, h100), 0u);  // 128 rows a split: 2 trips
  EXPECT_EQ(stages(1, 32768, a100), 2u);
  EXPECT_EQ(stages(1, 32768, m3), 0u);
  EXPECT_EQ(stages(32, 4096, Target::cpu(), ScalarType::bf16), 0u);  // 64 KiB: two buffers of 32 KiB don't fit twice
  // The FMA body's choice on the H100 copies K and V with cp.async (and nothing else reads them).
  ir::Function staged =
      lowered("attention_decode", ScalarType::bf16,
              {{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 32768}, {"d", 128}}, h100, {{"mma", 0}});
  EXPECT_TRUE(contains(codegen::emit_cuda(staged), "cp.async.cg.shared.global"));
  for (const char* t : {"k", "v"}) EXPECT_EQ(accesses(staged, t, 8).second, 0) << t << " read outside copy_async";
  // Its own copies: no barrier a trip, only the merge's.
  ir::Function shared_copies = lowered("attention_decode", ScalarType::bf16,
                                       {{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 32768}, {"d", 128}}, h100,
                                       {{"mma", 0}, {"own_copies", 0}});
  EXPECT_EQ(barriers(staged) + 1, barriers(shared_copies));
  nvrtc_compiles(staged, "attention_decode_staged");
}

// Launches the kernel three times on the same buffers: the same output each time, and the
// counters at zero after each (the contract's "left zero" is what makes a relaunch correct).
void expect_relaunchable(ScalarType type, const Config& config) {
  auto cpu = make_backend("cpu");
  const Kernel& k = find_kernel("attention_decode");
  LaunchOptions opts;
  opts.config = config;
  opts.scalars = {{"scale", 0.125}};
  auto plan = Context::global().plan(*cpu, k, type, kAttn, opts);
  const auto& params = plan->params();
  std::vector<Buffer> buffers(params.size());
  std::vector<Buffer*> args(params.size(), nullptr);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int out = -1, counters = -1;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].kind != ir::ParamKind::Tensor) continue;
    buffers[i] = cpu->alloc(params[i].elem, plan->elements[i]);
    args[i] = &buffers[i];
    std::vector<uint32_t> bits(plan->elements[i], 0);  // counters zero; q, k, v random
    if (params[i].elem == ScalarType::f32)
      for (uint32_t& b : bits) {
        float v = dist(rng);
        std::memcpy(&b, &v, 4);
      }
    if (params[i].elem == ScalarType::bf16)  // two values a word
      for (uint32_t& b : bits) b = f32_to_bf16_bits(dist(rng)) | uint32_t{f32_to_bf16_bits(dist(rng))} << 16;
    cpu->upload(buffers[i], bits.data());
    if (params[i].name == "out") out = static_cast<int>(i);
    if (params[i].name == "counters") counters = static_cast<int>(i);
  }
  ASSERT_GE(out, 0);
  ASSERT_GE(counters, 0);
  std::vector<float> first;
  for (int launch = 0; launch < 3; ++launch) {
    Context::global().run(*cpu, *plan, args, opts);
    std::vector<float> got(plan->elements[out]);
    std::vector<uint16_t> half(plan->elements[out]);
    std::vector<uint32_t> count(plan->elements[counters], 1);
    if (type == ScalarType::f32) {
      cpu->download(buffers[out], got.data());
    } else {
      cpu->download(buffers[out], half.data());
      for (size_t i = 0; i < got.size(); ++i) got[i] = bf16_bits_to_f32(half[i]);
    }
    cpu->download(buffers[counters], count.data());
    for (uint32_t c : count) EXPECT_EQ(c, 0u) << "launch " << launch;
    for (float v : got) ASSERT_TRUE(std::isfinite(v)) << "launch " << launch;
    if (launch == 0)
      first = got;
    else
      EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * 4), 0) << "launch " << launch;
  }
  for (Buffer& b : buffers)
    if (b.id) cpu->release(b);
}

TEST(AttentionDecode, IsRelaunchableOnTheSameCountersAndWorkspace) {
  expect_relaunchable(ScalarType::f32, {{"splits", 5}});
  // The tensor-core body on tile copies, whose merge is the same.
  expect_relaunchable(ScalarType::bf16, {{"mma", 1}, {"threads", 64}, {"stages", 3}, {"tma", 1}, {"splits", 5}});
}

TEST(AttentionDecode, SplitsFollowTheMultiprocessorsAndTheSequence) {
  const Kernel& k = find_kernel("attention_decode");
  auto splits = [&](uint32_t batch, uint32_t seq, const Target& t) {
    Shape s = {{"batch", batch}, {"heads", 32}, {"kv_heads", 8}, {"seq", seq}, {"d", 128}};
    Resolved r = resolve(k.spec(), s, t);
    EXPECT_EQ(r.geometry.grid[0], r.config.at("splits"));
    EXPECT_EQ(r.geometry.grid[1], 8u);
    EXPECT_EQ(r.geometry.grid[2], batch);
    return r.config.at("splits");
  };
  Target h100 = Target::cuda("sm_90a"), a100 = Target::cuda("sm_80");
  // One wave over batch * kv_heads, rounded down: 2 threadgroups of 256 threads a multiprocessor
  // (264 on 132 SMs), or 4 of 128 (528) where batch * kv_heads < 132 and 32 splits fill 7/8 of
  // that (unless 256 threads' splits also fill 7/8 of theirs with 2048 rows or more each); at least
  // 1, at least 64 rows a split, at most 32 splits.
  auto threads = [&](uint32_t batch, uint32_t seq) {
    return resolve(k.spec(), {{"batch", batch}, {"heads", 32}, {"kv_heads", 8}, {"seq", seq}, {"d", 128}}, h100)
        .config.at("threads");
  };
  EXPECT_EQ(splits(1, 32768, h100), 32u);  // 33 at 256 threads, at most 32
  EXPECT_EQ(threads(1, 32768), 256u);      // at 128, 32 splits would fill half of 528
  EXPECT_EQ(splits(1, 4096, h100), 32u);
  EXPECT_EQ(splits(8, 4096, h100), 8u);  // 528 / 64
  EXPECT_EQ(threads(8, 4096), 128u);
  EXPECT_EQ(splits(4, 4096, h100), 16u);
  EXPECT_EQ(splits(16, 4096, h100), 2u);  // 264 / 128 at 256 threads: 2048 rows a split (below)
  EXPECT_EQ(threads(16, 4096), 256u);
  EXPECT_EQ(splits(16, 2048, h100), 4u);  // 1024 rows a split at 256 threads: 128 threads, 528 / 128
  EXPECT_EQ(threads(16, 2048), 128u);
  EXPECT_EQ(threads(32, 4096), 256u);
  EXPECT_EQ(splits(32, 32768, h100), 1u);  // 256 threadgroups: a wave already
  EXPECT_EQ(splits(64, 32768, h100), 1u);
  EXPECT_EQ(splits(1, 100, h100), 2u);     // 64 rows a split at least
  EXPECT_EQ(splits(1, 32768, a100), 27u);  // 108 SMs: 216 / 8
  EXPECT_EQ(resolve(k.spec(), {{"batch", 8}, {"heads", 32}, {"kv_heads", 8}, {"seq", 4096}, {"d", 128}}, h100)
                .config.at("tile"),
            4u);  // group 4 x 1 chunk: 4 rows a team in flight
  Resolved r = resolve(k.spec(), {{"batch", 1}, {"heads", 128}, {"kv_heads", 8}, {"seq", 8192}, {"d", 128}}, h100);
  EXPECT_EQ(r.config.at("threads"), 128u);  // group 16: arrays of 16 x 128 columns a simdgroup
  EXPECT_EQ(r.config.at("tile"), 1u);
  EXPECT_EQ(r.config.at("splits"), 32u);
}

// The tensor-core body (kernels/attention/decode_mma.hpp): the group's heads as an mma A's rows,
// each simdgroup bn keys of a staged block, the simdgroups' and splits' states merged as the FMA
// body's are. Groups 1 to 16, head dims that are not 64's multiples, one key, splits whose last
// block is partly past the sequence, one to four simdgroups.
TEST(AttentionDecode, TheTensorCoreBodyMatchesTheReference) {
  struct Case {
    Shape shape;
    Config config;
  };
  const std::vector<Case> cases = {
      {kAttn, {{"splits", 1}}},
      {kAttn, {{"splits", 3}}},
      {{{"batch", 1}, {"heads", 16}, {"kv_heads", 1}, {"seq", 300}, {"d", 96}}, {{"splits", 2}}},  // group 16
      {{{"batch", 1}, {"heads", 16}, {"kv_heads", 2}, {"seq", 77}, {"d", 128}}, {{"splits", 1}}},  // group 8
      {{{"batch", 3}, {"heads", 2}, {"kv_heads", 2}, {"seq", 1}, {"d", 16}}, {}},                  // group 1, one key
      {kAttn, {{"splits", 2}, {"bn", 32}, {"threads", 64}}},
      {kAttn, {{"splits", 1}, {"threads", 32}}},
      // K and V through `stages` buffers a block ahead, one barrier a block (two simdgroups: the
      // engine's 64 KiB).
      {{{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 2000}, {"d", 128}},
       {{"splits", 3}, {"threads", 64}, {"stages", 2}}},
      {{{"batch", 1}, {"heads", 16}, {"kv_heads", 1}, {"seq", 300}, {"d", 96}}, {{"threads", 64}, {"stages", 3}}},
      {kAttn, {{"splits", 2}, {"threads", 64}, {"stages", 4}}},
      {{{"batch", 3}, {"heads", 2}, {"kv_heads", 2}, {"seq", 1}, {"d", 16}}, {{"stages", 2}}},
      // The buffers by tile copies (thread 0, zeros past seq, no barrier in the loop): splits whose
      // last block passes seq, batches of 3, one key, blocks of 32 and 64 rows, 2 to 4 buffers.
      {{{"batch", 3}, {"heads", 8}, {"kv_heads", 2}, {"seq", 300}, {"d", 64}},
       {{"splits", 3}, {"threads", 64}, {"stages", 4}, {"tma", 1}}},
      {{{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 2000}, {"d", 128}},
       {{"splits", 2}, {"threads", 64}, {"stages", 3}, {"tma", 1}}},
      {{{"batch", 2}, {"heads", 16}, {"kv_heads", 2}, {"seq", 1}, {"d", 128}},
       {{"threads", 32}, {"bn", 32}, {"stages", 2}, {"tma", 1}}},
      {{{"batch", 1}, {"heads", 16}, {"kv_heads", 1}, {"seq", 150}, {"d", 64}}, {{"stages", 2}, {"tma", 1}}},
  };
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (const Case& c : cases) {
      Config config = c.config;
      config["mma"] = 1;
      if (!config.count("threads")) config["threads"] = 128;
      CheckResult r = check("attention_decode", t, c.shape, config);
      EXPECT_TRUE(r.passed) << type_name(t) << " " << config_text(config) << ": " << r.summary();
    }
  // Where it does not apply, the contract says which rule.
  EXPECT_NE(contract_error("attention_decode", {{"batch", 1}, {"heads", 2}, {"kv_heads", 1}, {"seq", 50}, {"d", 72}},
                           {{"mma", 1}})
                .find("dtiles * 16 == d"),
            std::string::npos);
  EXPECT_NE(contract_error("attention_decode", kAttn, {{"mma", 1}, {"bn", 24}}).find("bn % 16 == 0"),
            std::string::npos);
  EXPECT_NE(contract_error("attention_decode", kAttn, {{"mma", 1}, {"stages", 0}, {"tma", 1}}).find("stages >= 2"),
            std::string::npos);
}

// The rule takes the tensor-core body where a split's rows are few (bench/NOTES.md): one or two
// sequences of up to 16384 (8192 for two) tokens on the H100 / H200, 16-bit inputs only; two
// threadgroups an SM's worth of splits; with K and V in two buffers where the splits are longer, up
// to batch * kv_heads = sm_count / 2, short of splits of 2048 rows that fill a wave of 256 threads.
TEST(AttentionDecode, TheRuleTakesTheTensorCoreBodyForShortSplits) {
  const KernelSpec& spec = find_kernel("attention_decode").spec();
  Target h100 = Target::cuda("sm_90a");
  h100.tile_copy = false;  // the forms below are the rule's where tile copies are not (the next test)
  auto config = [&](uint32_t batch, uint32_t seq, ScalarType t = ScalarType::bf16) {
    Shape s = {{"batch", batch}, {"heads", 32}, {"kv_heads", 8}, {"seq", seq}, {"d", 128}};
    return resolve(spec, s, h100, {}, {}, t).config;
  };
  EXPECT_EQ(config(1, 4096).at("mma"), 1u);
  EXPECT_EQ(config(1, 4096).at("splits"), 32u);
  EXPECT_EQ(config(1, 4096).at("threads"), 128u);
  EXPECT_EQ(config(1, 4096).at("stages"), 0u);
  EXPECT_EQ(config(1, 16384).at("mma"), 1u);
  EXPECT_EQ(config(2, 8192).at("mma"), 1u);
  EXPECT_EQ(config(2, 8192).at("splits"), 16u);
  // Longer splits up to batch * kv_heads = sm_count / 2: the same body with K and V in two buffers.
  for (auto [batch, seq, splits] :
       {std::tuple{1u, 32768u, 32u}, {2u, 16384u, 16u}, {4u, 4096u, 8u}, {8u, 4096u, 4u}, {4u, 8192u, 8u}}) {
    Config c = config(batch, seq);
    EXPECT_EQ(c.at("mma"), 1u) << batch << " x " << seq;
    EXPECT_EQ(c.at("stages"), 2u) << batch << " x " << seq;
    EXPECT_EQ(c.at("splits"), splits) << batch << " x " << seq;
    EXPECT_EQ(c.at("threads"), 128u) << batch << " x " << seq;
    EXPECT_EQ(c.at("own_copies"), 0u) << batch << " x " << seq;  // the FMA body's
  }
  ir::Function staged = lowered("attention_decode", ScalarType::bf16,
                                {{"batch", 8}, {"heads", 32}, {"kv_heads", 8}, {"seq", 4096}, {"d", 128}}, h100);
  EXPECT_TRUE(contains(codegen::emit_cuda(staged), "mma.sync.aligned.m16n8k16"));
  nvrtc_compiles(staged, "attention_decode_mma_staged");
  // Where two 256-thread threadgroups an SM's worth of splits fill 7/8 of their wave and stream 2048
  // rows or more each: the FMA body at 256 threads (it keeps more in flight than either 128-thread form).
  for (auto [batch, seq, splits] :
       {std::tuple{8u, 32768u, 4u}, {8u, 8192u, 4u}, {4u, 32768u, 8u}, {2u, 32768u, 16u}, {16u, 8192u, 2u}}) {
    Config c = config(batch, seq);
    EXPECT_EQ(c.at("mma"), 0u) << batch << " x " << seq;
    EXPECT_EQ(c.at("threads"), 256u) << batch << " x " << seq;
    EXPECT_EQ(c.at("splits"), splits) << batch << " x " << seq;
  }
  // Not where 2 splits fill 192 of 264 places (batch 12): 128 threads, 5 splits of 528 / 96.
  EXPECT_EQ(config(12, 32768).at("threads"), 128u);
  EXPECT_EQ(config(12, 32768).at("splits"), 5u);
  EXPECT_EQ(config(16, 4096).at("mma"), 0u);  // one split or two: the FMA body's loads keep more in flight
  EXPECT_EQ(config(32, 4096).at("mma"), 0u);
  EXPECT_EQ(config(32, 4096).at("own_copies"), 1u);
  // d 256: two threadgroups' buffers would pass the SM's threadgroup memory.
  Shape wide = {{"batch", 4}, {"heads", 32}, {"kv_heads", 8}, {"seq", 4096}, {"d", 256}};
  EXPECT_EQ(resolve(spec, wide, h100, {}, {}, ScalarType::bf16).config.at("mma"), 0u);
  EXPECT_EQ(config(1, 4096, ScalarType::f32).at("mma"), 0u);
  EXPECT_EQ(config(1, 4096, ScalarType::f16).at("mma"), 1u);
  // Targets without a register file to size residency by (the CPU engine, Metal): the FMA body.
  EXPECT_EQ(resolve(spec, kAttn, Target::cpu()).config.at("mma"), 0u);
  EXPECT_EQ(resolve(spec, kAttn, Target::metal("apple9")).config.at("mma"), 0u);
}

// Where the target has tile copies (sm_90) and d is a multiple of 64 whose three buffers fit twice
// an SM: the tensor-core body with K and V by tile copies, 128 threads, two threadgroups an SM's worth
// of splits, in two buffers where they fit a wave, but where the splits are short (bench/NOTES.md
// twenty-third and twenty-fifth sessions).
TEST(AttentionDecode, TheRuleTakesTileCopiesWhereTheTargetHasThem) {
  const KernelSpec& spec = find_kernel("attention_decode").spec();
  const Target h100 = Target::cuda("sm_90a");
  auto config = [&](uint32_t batch, uint32_t seq, uint32_t d = 128, ScalarType t = ScalarType::bf16) {
    Shape s = {{"batch", batch}, {"heads", 32}, {"kv_heads", 8}, {"seq", seq}, {"d", d}};
    return resolve(spec, s, h100, {}, {}, t).config;
  };
  for (auto [batch, seq, splits, stages] : {std::tuple{64u, 1024u, 1u, 3u},
                                            {1u, 32768u, 32u, 2u},
                                            {8u, 4096u, 4u, 2u},
                                            {8u, 32768u, 4u, 2u},
                                            {32u, 4096u, 1u, 2u},
                                            {64u, 4096u, 1u, 3u},
                                            {16u, 8192u, 2u, 2u}}) {
    Config c = config(batch, seq);
    EXPECT_EQ(c.at("tma"), 1u) << batch << " x " << seq;
    EXPECT_EQ(c.at("mma"), 1u) << batch << " x " << seq;
    EXPECT_EQ(c.at("stages"), stages) << batch << " x " << seq;
    EXPECT_EQ(c.at("threads"), 128u) << batch << " x " << seq;
    EXPECT_EQ(c.at("splits"), splits) << batch << " x " << seq;
  }
  // Short splits (batch * kv_heads <= sm_count / 8, seq <= 512 * splits): single-buffered, by copy_async.
  EXPECT_EQ(config(1, 4096).at("tma"), 0u);
  EXPECT_EQ(config(1, 4096).at("stages"), 0u);
  EXPECT_EQ(config(2, 512).at("tma"), 0u);
  EXPECT_EQ(config(8, 4096, 64).at("tma"), 1u);
  EXPECT_EQ(config(8, 4096, 96).at("tma"), 0u);   // not whole boxes of 64 columns
  EXPECT_EQ(config(8, 4096, 256).at("tma"), 0u);  // 192 KiB of buffers: one threadgroup an SM
  EXPECT_EQ(config(8, 4096, 128, ScalarType::f32).at("tma"), 0u);
  EXPECT_EQ(config(8, 4096, 128, ScalarType::f16).at("tma"), 1u);
  EXPECT_EQ(resolve(spec, kAttn, Target::cuda("sm_80")).config.at("tma"), 0u);
  EXPECT_EQ(resolve(spec, kAttn, Target::cpu()).config.at("tma"), 0u);
  // Thread 0 copies boxes; the others wait on mbarriers: no barrier in the loop.
  ir::Function f = lowered("attention_decode", ScalarType::bf16,
                           {{"batch", 8}, {"heads", 32}, {"kv_heads", 8}, {"seq", 4096}, {"d", 128}}, h100);
  std::string cuda = codegen::emit_cuda(f);
  EXPECT_TRUE(contains(cuda, "mt_copy_tile3(")) << cuda;
  EXPECT_FALSE(contains(cuda, "cp.async.cg")) << cuda;
  nvrtc_compiles(f, "attention_decode_tile_copies");
}

TEST(AttentionDecode, OneSplitWritesOutDirectlyAndMoreTakeAFencedTicketNvrtcCompiles) {
  const Target cuda = Target::cuda("sm_90a");
  auto ops = [](const ir::Function& f, ir::Op op) { return count(f, [&](const ir::Inst& in) { return in.op == op; }); };
  // The FMA body (the tensor-core one, which the rule takes at this shape, below).
  ir::Function one = lowered("attention_decode", ScalarType::bf16, kAttn, cuda, {{"splits", 1}, {"mma", 0}});
  EXPECT_EQ(ops(one, ir::Op::Fence), 0);
  EXPECT_EQ(ops(one, ir::Op::Atomic), 0);
  EXPECT_EQ(count(one,
                  [&](const ir::Inst& in) {
                    return in.space == ir::MemSpace::Device && in.param == one.param_index("workspace");
                  }),
            0);
  ir::Function many = lowered("attention_decode", ScalarType::bf16, kAttn, cuda, {{"splits", 4}, {"mma", 0}});
  EXPECT_EQ(ops(many, ir::Op::Fence), 2);   // before the ticket (release) and after it (acquire)
  EXPECT_EQ(ops(many, ir::Op::Atomic), 2);  // the ticket and the counter's reset
  std::string src = codegen::emit_cuda(many);
  EXPECT_TRUE(contains(src, "__threadfence();")) << src;
  EXPECT_TRUE(contains(src, "atomicAdd(")) << src;
  EXPECT_TRUE(contains(src, "atomicExch(")) << src;
  // K and V in 16-byte loads only.
  for (const char* t : {"k", "v"}) {
    auto [vec, all] = accesses(many, t, 8);
    EXPECT_GT(vec, 0) << t;
    EXPECT_EQ(vec, all) << t << "\n" << ir::print(many);
  }
  nvrtc_compiles(many, "attention_decode_split");
  nvrtc_compiles(one, "attention_decode_one");
  // The tensor-core body: the same ticket; K and V only through copy_async, read by ldmatrix.
  ir::Function mma = lowered("attention_decode", ScalarType::bf16, kAttn, cuda, {{"splits", 4}});
  EXPECT_EQ(ops(mma, ir::Op::Fence), 2);
  EXPECT_EQ(ops(mma, ir::Op::Atomic), 2);
  for (const char* t : {"k", "v"}) EXPECT_EQ(accesses(mma, t, 8).second, 0) << t << " read outside copy_async";
  std::string mma_src = codegen::emit_cuda(mma);
  EXPECT_TRUE(contains(mma_src, "mma.sync.aligned.m16n8k16")) << mma_src;
  EXPECT_TRUE(contains(mma_src, "ldmatrix")) << mma_src;
  nvrtc_compiles(mma, "attention_decode_mma");
}

TEST(AttentionDecode, OffsetsOfKAndVAre64BitPast2To31ElementsAndNvrtcCompilesThem) {
  Target cuda = Target::cuda("sm_90a");
  cuda.tile_copy = false;  // tile copies address K and V by coordinates of a view: below
  // 64 x 8 x 32768 x 128 is 2^31 elements, the largest index 2^31 - 1: u32 offsets still. 40960
  // rows pass it.
  Shape big = {{"batch", 64}, {"heads", 32}, {"kv_heads", 8}, {"seq", 32768}, {"d", 128}};
  EXPECT_EQ(u64_values(lowered("attention_decode", ScalarType::bf16, big, cuda)), 0);
  big["seq"] = 40960;
  Shape small = big;
  small["seq"] = 4096;
  EXPECT_EQ(u64_values(lowered("attention_decode", ScalarType::bf16, small, cuda)), 0);
  ir::Function wide = lowered("attention_decode", ScalarType::bf16, big, cuda);
  EXPECT_GT(u64_values(wide), 0) << ir::print(wide);
  nvrtc_compiles(wide, "attention_decode_wide");
  // A tile copy's view of [d, seq, batch * kv_heads] reaches every row with 32-bit coordinates.
  ir::Function boxes = lowered("attention_decode", ScalarType::bf16, big, Target::cuda("sm_90a"));
  EXPECT_TRUE(contains(codegen::emit_cuda(boxes), "mt_copy_tile3("));
  EXPECT_EQ(u64_values(boxes), 0) << ir::print(boxes);
  nvrtc_compiles(boxes, "attention_decode_wide_boxes");
}

TEST(AttentionDecode, MetalNeedsVersion32ForItsFence) {
  const Target metal = Target::metal("apple9");
  ir::Function f = lowered("attention_decode", ScalarType::bf16, kAttn, metal, {{"splits", 4}});
  std::string msl = codegen::emit_msl(f, {.version = codegen::MslOptions::Version::V3_2});
  EXPECT_TRUE(contains(msl, "coherent(device) device float* workspace")) << msl;
  EXPECT_TRUE(contains(msl, "thread_scope_device")) << msl;
  EXPECT_THROW(codegen::emit_msl(f), Error);
  ir::Function one = lowered("attention_decode", ScalarType::bf16, kAttn, metal, {{"splits", 1}});
  EXPECT_FALSE(contains(codegen::emit_msl(one), "coherent"));  // no fence: any version
}

TEST(AttentionDecode, ContractRefusesWhatItCannotDo) {
  Shape s = kAttn;
  s["heads"] = 6;
  s["kv_heads"] = 4;
  EXPECT_TRUE(contains(contract_error("attention_decode", s), "heads % kv_heads == 0 (heads = 6, kv_heads = 4)"));
  s = kAttn;
  s["d"] = 12;
  EXPECT_TRUE(contains(contract_error("attention_decode", s), "d % 8 == 0 (d = 12)"));
  s["d"] = 520;
  EXPECT_TRUE(contains(contract_error("attention_decode", s), "d <= 512 (d = 520)"));
  std::string e = contract_error("attention_decode", kAttn, {{"splits", 0}});
  EXPECT_TRUE(contains(e, "splits >= 1 (splits = 0)")) << e;
  e = contract_error("attention_decode", kAttn, {{"splits", 17}});
  EXPECT_TRUE(contains(e, "splits <= min(")) << e;
  e = contract_error("attention_decode", kAttn, {{"group", 2}});
  EXPECT_TRUE(contains(e, "group == heads / kv_heads")) << e;
}

}  // namespace

// seq is a launch constexpr (KernelSpec::launch_constexprs): a decode loop whose seq grows by one a
// step launches one compiled kernel, and each launch still matches the reference.
TEST(AttentionDecode, AGrowingSequenceReusesOneCompiledKernel) {
  auto cpu = make_backend("cpu");
  const Kernel& k = find_kernel("attention_decode");
  std::shared_ptr<const Lowered> first;
  for (uint32_t seq : {1000u, 1001u, 1002u}) {
    Shape s = {{"batch", 1}, {"heads", 8}, {"kv_heads", 2}, {"seq", seq}, {"d", 64}};
    Config one_split = {{"splits", 1}};  // the split count follows seq / 64; fixed here, as at large seq
    LaunchOptions opts;
    opts.config = one_split;
    auto plan = Context::global().plan(*cpu, k, ScalarType::bf16, s, opts);
    if (!first) first = plan->lowered;
    EXPECT_EQ(plan->lowered, first) << "seq = " << seq << " lowered the kernel again";
    int seq_param = plan->lowered->fn.param_index("seq");
    ASSERT_GE(seq_param, 0) << "seq was baked into the code";
    EXPECT_EQ(plan->values[seq_param], seq);
    EXPECT_TRUE(check("attention_decode", ScalarType::bf16, s, one_split).passed) << "seq = " << seq;
  }
}
