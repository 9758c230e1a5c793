// attention_prefill's two bodies (kernels/attention/attention_prefill.cpp, docs/kernels.md): which
// one the rule picks on each target, and each body against the float64 reference on the CPU engine
// with its sanitizer, over odd sequence lengths, GQA groups, head dims and the Config knobs.
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;

namespace {

Shape prefill_shape(uint32_t batch, uint32_t heads, uint32_t kv_heads, uint32_t seq, uint32_t d) {
  return {{"batch", batch}, {"heads", heads}, {"kv_heads", kv_heads}, {"seq", seq}, {"d", d}};
}

CheckResult check(ScalarType t, const Shape& shape, const Config& config) {
  auto cpu = make_backend("cpu:sanitize");
  CheckOptions opts;
  opts.launch.config = config;
  return run_and_check(*cpu, find_kernel("attention_prefill"), t, shape, opts);
}

TEST(AttentionPrefill, TheRuleTakesWarpgroupMmaWhereTheTargetHasItAndDIsAMultipleOf64) {
  const KernelSpec& spec = find_kernel("attention_prefill").spec();
  Resolved h100 = resolve(spec, prefill_shape(1, 32, 8, 4096, 128), Target::cuda("sm_90a"));
  EXPECT_EQ(config_text(h100.config), "bn=64,dtiles=8,lazy_rescale=1,resident=4,tma=1,warpgroup=1,warps=4");
  EXPECT_EQ(h100.geometry.tpg, 128u);  // one warpgroup of 64 query rows
  EXPECT_EQ(resolve(spec, prefill_shape(1, 2, 1, 100, 256), Target::cuda("sm_90a")).config.at("warpgroup"), 1u);
  // d = 80 is not whole rows of 64 columns; sm_80 and Metal have no warpgroup MMA.
  EXPECT_EQ(resolve(spec, prefill_shape(1, 2, 1, 100, 80), Target::cuda("sm_90a")).config.at("warpgroup"), 0u);
  EXPECT_EQ(resolve(spec, prefill_shape(1, 32, 8, 4096, 128), Target::cuda("sm_80")).config.at("warpgroup"), 0u);
  EXPECT_EQ(resolve(spec, prefill_shape(1, 32, 8, 4096, 128), Target::metal("apple9")).config.at("warpgroup"), 0u);
  EXPECT_EQ(resolve(spec, prefill_shape(1, 32, 8, 4096, 128), Target::cpu()).config.at("warpgroup"), 1u);
}

// Four threadgroups an SM (registers capped at 128) and the lazy rescale on the tile-copy body at d
// = 128 only: d = 64 fits more threadgroups uncapped, d = 256's accumulators pass 128 registers.
TEST(AttentionPrefill, TheRuleCapsRegistersForFourThreadgroupsAtD128) {
  const KernelSpec& spec = find_kernel("attention_prefill").spec();
  auto config = [&](uint32_t d, const Target& t) {
    return config_text(resolve(spec, prefill_shape(1, 32, 8, 4096, d), t).config);
  };
  const Target h100 = Target::cuda("sm_90a");
  EXPECT_EQ(config(64, h100), "bn=64,dtiles=4,lazy_rescale=1,resident=0,tma=1,warpgroup=1,warps=4");
  EXPECT_EQ(config(256, h100), "bn=64,dtiles=16,lazy_rescale=1,resident=0,tma=1,warpgroup=1,warps=4");
  EXPECT_EQ(config(128, Target::cuda("sm_80")), "bn=64,dtiles=8,lazy_rescale=0,resident=0,tma=0,warpgroup=0,warps=4");
  // The CPU engine's 64 KiB hold one threadgroup's tiles, not four.
  EXPECT_EQ(resolve(spec, prefill_shape(1, 32, 8, 4096, 128), Target::cpu()).config.at("resident"), 0u);
}

TEST(AttentionPrefill, BothBodiesMatchTheReferenceForEveryKnob) {
  struct Case {
    Shape shape;
    Config config;
  };
  const Config mma{{"warpgroup", 0}};
  const std::vector<Case> cases = {
      // The warpgroup body on tile copies (the rule's on the CPU engine, whose 64 KiB of
      // threadgroup memory hold it up to d = 128): one row, partial last blocks of queries and of
      // keys, GQA.
      {prefill_shape(1, 1, 1, 1, 64), {}},
      {prefill_shape(2, 4, 2, 77, 128), {}},
      {prefill_shape(1, 2, 1, 130, 64), {}},
      // Two warpgroups sharing K and V (128 query rows), blocks of 128, 32 and 16 keys.
      {prefill_shape(1, 2, 1, 200, 64), {{"warps", 8}}},
      {prefill_shape(1, 2, 1, 200, 64), {{"bn", 128}}},
      {prefill_shape(1, 1, 1, 97, 64), {{"bn", 32}}},
      {prefill_shape(1, 1, 1, 50, 128), {{"bn", 16}, {"warps", 8}}},
      // The mma body where the rule would take the warpgroup one.
      {prefill_shape(2, 4, 2, 77, 128), mma},
      {prefill_shape(1, 2, 1, 130, 64), mma},
      // Each body with the lazy rescale (a row's max moves only past 8 in log2 units).
      {prefill_shape(1, 2, 1, 200, 64), {{"lazy_rescale", 1}}},
      {prefill_shape(1, 2, 1, 200, 64), {{"lazy_rescale", 1}, {"warps", 8}, {"bn", 32}}},
      {prefill_shape(2, 4, 2, 77, 128), {{"lazy_rescale", 1}, {"warpgroup", 0}}},
      // The warpgroup body with every thread's copies (rows past seq repeat the last) where the
      // rule takes tile copies (zeros past seq); batches of 3 for the tile copies' view.
      {prefill_shape(1, 1, 1, 1, 64), {{"tma", 0}}},
      {prefill_shape(2, 4, 2, 77, 128), {{"tma", 0}}},
      {prefill_shape(1, 2, 1, 200, 64), {{"tma", 0}, {"warps", 8}}},
      {prefill_shape(3, 2, 1, 97, 64), {{"tma", 0}, {"bn", 32}, {"lazy_rescale", 1}}},
      {prefill_shape(3, 2, 1, 97, 64), {{"bn", 32}, {"lazy_rescale", 1}}},
      // The tile-copy body with every block's rescale, and with the registers' cap (ignored here).
      {prefill_shape(2, 4, 2, 77, 128), {{"lazy_rescale", 0}}},
      {prefill_shape(1, 2, 1, 130, 128), {{"resident", 4}}},
  };
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16})
    for (const Case& c : cases) {
      CheckResult r = check(t, c.shape, c.config);
      EXPECT_TRUE(r.passed) << type_name(t) << " " << shape_text(c.shape) << " " << config_text(c.config) << ": "
                            << r.summary();
    }
}

// Scores of a wide range (scale 40: a row's scores spread over hundreds of log2 units), so that
// rows' maxes keep moving by more than the lazy rescale's slack in later blocks of keys while
// other rows of the same simdgroup keep theirs: both bodies, with and without lazy_rescale,
// against the float64 reference (whose softmax is then nearly one key a row).
TEST(AttentionPrefill, ScoresOfAWideRangeMatchTheReferenceWithEveryRescale) {
  KernelSpec spec = find_kernel("attention_prefill").spec();
  spec.inits["scale"] = Init::constant(40.0);
  Kernel wide = make_kernel(std::move(spec));
  auto cpu = make_backend("cpu:sanitize");
  for (const Config& body : {Config{}, Config{{"tma", 0}}, Config{{"warpgroup", 0}}})
    for (uint32_t lazy : {0u, 1u}) {
      CheckOptions opts;
      opts.launch.config = body;
      opts.launch.config["lazy_rescale"] = lazy;
      opts.launch.config["bn"] = 16;  // many blocks a row: many chances for its max to move
      for (const Shape& shape : {prefill_shape(1, 2, 1, 150, 64), prefill_shape(1, 1, 1, 97, 128)}) {
        CheckResult r = run_and_check(*cpu, wide, ScalarType::bf16, shape, opts);
        EXPECT_TRUE(r.passed) << shape_text(shape) << " " << config_text(opts.launch.config) << ": " << r.summary();
      }
    }
}

TEST(AttentionPrefill, TheWarpgroupBodysContractIsCheckedBeforeALaunch) {
  auto refused = [](const Shape& shape, const Config& config) {
    try {
      check(ScalarType::bf16, shape, config);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("launched");
  };
  std::string d80 = refused(prefill_shape(1, 1, 1, 64, 80), {{"warpgroup", 1}});
  EXPECT_TRUE(contains(d80, "attention_prefill")) << d80;
  EXPECT_TRUE(contains(d80, "d % 64 == 0")) << d80;
  std::string warps = refused(prefill_shape(1, 1, 1, 64, 64), {{"warpgroup", 1}, {"warps", 2}});
  EXPECT_TRUE(contains(warps, "warps % 4 == 0")) << warps;
  std::string tma = refused(prefill_shape(1, 1, 1, 64, 64), {{"warpgroup", 0}, {"tma", 1}});
  EXPECT_TRUE(contains(tma, "tile_copy == 1")) << tma;
  std::string resident = refused(prefill_shape(1, 1, 1, 64, 64), {{"warpgroup", 0}, {"resident", 4}});
  EXPECT_TRUE(contains(resident, "resident == 0 || warpgroup == 1")) << resident;
}

}  // namespace
