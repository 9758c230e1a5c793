// The pipeline's other passes: constexpr baking, reduction lowering, folding, dead code.
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

void reduce_all(In<f32> x, Out<f32> s, Out<f32> mx, Out<f32> mn) {
  Val v = load(x[program_id(0) * lsize() + tid()]);
  Val total = reduce_sum(v);
  Val hi = reduce_max(v);
  Val lo = reduce_min(v);
  if_(tid() == 0u, [&] {
    store(s[program_id(0)], total);
    store(mx[program_id(0)], hi);
    store(mn[program_id(0)], lo);
  });
}

void constant_branch(In<f32> x, Out<f32> y, Constexpr n) {
  Val dead = load(x[0u]) * 3.0f;  // never used: removed
  (void)dead;
  if_(
      n > 4u, [&] { store(y[tid()], load(x[tid()]) + 1.0f); }, [&] { store(y[tid()], lit(0.0f)); });
}

}  // namespace

TEST(Pipeline, ListsPassesInOrder) {
  auto names = passes::pipeline_pass_names();
  ASSERT_EQ(names.size(), 12u);
  EXPECT_EQ(names.front(), "inline_calls");
  EXPECT_EQ(names.back(), "eliminate_dead_code");
}

TEST(Pipeline, LowersThreadgroupReductionsToSimdAndSharedMemory) {
  ir::Function f =
      define_kernel("reduce_all", ir::Mode::Reduction, {"x", "s", "mx", "mn"}, &reduce_all).trace(ScalarType::f32);
  ir::Function g = passes::run_pipeline(f, Target::cpu());
  std::string text = ir::print(g);
  EXPECT_FALSE(contains(text, "threadgroup_reduce")) << text;
  EXPECT_TRUE(contains(text, "simd_sum") && contains(text, "simd_max") && contains(text, "simd_min")) << text;
  EXPECT_TRUE(contains(text, "threadgroup_array")) << text;
  EXPECT_TRUE(contains(text, "barrier")) << text;
  // Every tpg that is a multiple of 32, several threadgroups, values that make order matter.
  for (uint32_t tpg : {32u, 96u, 256u, 1024u}) {
    const uint32_t groups = 3;
    std::vector<float> x(groups * tpg), s(groups, NAN), mx(groups, NAN), mn(groups, NAN);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) - 50.0f;
    mtile::testing::run_f32(g, mtile::testing::geometry(groups, tpg), {&x, &s, &mx, &mn});
    for (uint32_t r = 0; r < groups; ++r) {
      double sum = 0, hi = -1e30, lo = 1e30;
      for (uint32_t t = 0; t < tpg; ++t) {
        double v = x[r * tpg + t];
        sum += v;
        hi = std::max(hi, v);
        lo = std::min(lo, v);
      }
      EXPECT_EQ(s[r], sum) << "tpg " << tpg;  // small integers: exact in f32
      EXPECT_EQ(mx[r], hi);
      EXPECT_EQ(mn[r], lo);
    }
  }
}

TEST(Pipeline, BakedConstexprFoldsBranchesAndDeadCodeGoes) {
  KernelDef def = define_kernel("constant_branch", ir::Mode::Reduction, {"x", "y", "n"}, &constant_branch);
  passes::PipelineOptions opts;
  opts.bake = {{"n", 8}};
  std::string text = ir::print(passes::run_pipeline(def.trace(ScalarType::f32), Target::cpu(), opts));
  EXPECT_FALSE(contains(text, "if ")) << text;       // n > 4 folded to true: the if is gone
  EXPECT_FALSE(contains(text, "const 3 ")) << text;  // the unused load * 3 is gone
  EXPECT_TRUE(contains(text, "load x[%")) << text;   // the live load stays
  EXPECT_FALSE(contains(text, "constexpr n")) << text;
  std::string passed = ir::print(passes::run_pipeline(def.trace(ScalarType::f32), Target::cpu()));
  EXPECT_TRUE(contains(passed, "constexpr n")) << passed;  // not baked: a launch argument
  EXPECT_TRUE(contains(passed, "if ")) << passed;
}

TEST(Pipeline, AfterEachSeesEveryStep) {
  KernelDef def = define_kernel("constant_branch", ir::Mode::Reduction, {"x", "y", "n"}, &constant_branch);
  std::vector<std::string> seen;
  passes::PipelineOptions opts;
  opts.after_each = [&](const std::string& pass, const ir::Function&) { seen.push_back(pass); };
  passes::run_pipeline(def.trace(ScalarType::f32), Target::cpu(), opts);
  ASSERT_EQ(seen.size(), 13u);
  EXPECT_EQ(seen[0], "trace");
  EXPECT_EQ(seen[1], "inline_calls");
}
