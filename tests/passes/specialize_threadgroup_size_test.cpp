// specialize_threadgroup_size: a known threadgroup size becomes a constant, a reduction over one
// simdgroup needs no threadgroup memory and no barrier, a larger one needs exactly one barrier,
// the CUDA code declares __launch_bounds__, and a launch with another size is refused.
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

void row_sum(In<f32> x, Out<f32> s, Out<f32> width) {
  Val v = load(x[program_id(0) * lsize() + tid()]);
  Val total = reduce_sum(v);
  if_(tid() == 0u, [&] {
    store(s[program_id(0)], total);
    store(width[program_id(0)], lsize().cast<f32>());
  });
}

ir::Function lowered(uint32_t tpg) {
  passes::PipelineOptions opts;
  opts.tpg = tpg;
  ir::Function f = define_kernel("row_sum", ir::Mode::Reduction, {"x", "s", "width"}, &row_sum).trace(ScalarType::f32);
  return passes::run_pipeline(f, Target::cpu(), opts);
}

size_t count(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(SpecializeThreadgroupSize, OneSimdgroupNeedsNoBarrierNorSharedMemory) {
  ir::Function g = lowered(32);
  std::string text = ir::print(g);
  EXPECT_EQ(g.tpg, 32u);
  EXPECT_TRUE(contains(text, " tpg=32")) << text;
  EXPECT_FALSE(contains(text, "threadgroup_size")) << text;  // folded to the constant
  EXPECT_FALSE(contains(text, "barrier")) << text;
  EXPECT_FALSE(contains(text, "threadgroup_array")) << text;
  EXPECT_TRUE(contains(text, "simd_sum")) << text;
}

TEST(SpecializeThreadgroupSize, SeveralSimdgroupsNeedOneBarrier) {
  std::string text = ir::print(lowered(256));
  EXPECT_EQ(count(text, "barrier"), 1u) << text;
  EXPECT_TRUE(contains(text, "threadgroup_array")) << text;
}

TEST(SpecializeThreadgroupSize, ComputesTheSameSumsAsTheGenericCode) {
  for (uint32_t tpg : {32u, 64u, 256u, 1024u}) {
    const uint32_t groups = 3;
    std::vector<float> x(groups * tpg);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 29) % 97) - 48.0f;
    std::vector<float> s(groups, NAN), w(groups, NAN), s_any(groups, NAN), w_any(groups, NAN);
    mtile::testing::run_f32(lowered(tpg), mtile::testing::geometry(groups, tpg), {&x, &s, &w});
    mtile::testing::run_f32(lowered(0), mtile::testing::geometry(groups, tpg), {&x, &s_any, &w_any});
    for (uint32_t r = 0; r < groups; ++r) {
      double sum = 0;
      for (uint32_t t = 0; t < tpg; ++t) sum += x[r * tpg + t];
      EXPECT_EQ(s[r], sum) << "tpg " << tpg;  // small integers: exact in f32
      EXPECT_EQ(s_any[r], sum) << "tpg " << tpg;
      EXPECT_EQ(w[r], static_cast<float>(tpg));
      EXPECT_EQ(w_any[r], static_cast<float>(tpg));
    }
  }
}

TEST(SpecializeThreadgroupSize, CudaDeclaresLaunchBounds) {
  ir::Function g = define_kernel("row_sum", ir::Mode::Reduction, {"x", "s", "width"}, &row_sum).trace(ScalarType::f32);
  passes::PipelineOptions opts;
  opts.tpg = 128;
  EXPECT_TRUE(
      contains(codegen::emit_cuda(passes::run_pipeline(g, Target::cuda("sm_90a"), opts)), "__launch_bounds__(128)"));
  EXPECT_FALSE(contains(codegen::emit_cuda(passes::run_pipeline(g, Target::cuda("sm_90a"))), "__launch_bounds__"));
}

TEST(SpecializeThreadgroupSize, LaunchWithAnotherSizeIsRefused) {
  std::vector<float> x(64, 1.0f), s(2, NAN), w(2, NAN);
  try {
    mtile::testing::run_f32(lowered(32), mtile::testing::geometry(1, 64), {&x, &s, &w});
    FAIL() << "a launch with 64 threads ran code lowered for 32";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "row_sum")) << e.what();
    EXPECT_TRUE(contains(e.what(), "lowered for 32 threads per threadgroup, launched with 64")) << e.what();
  }
  EXPECT_TRUE(std::isnan(s[0]));
}
