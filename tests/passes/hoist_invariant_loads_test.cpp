// hoist_invariant_loads: a read-only tensor's constant-index load moves above the reduction's
// barrier to the start of the kernel; loads after a possible return, masked loads and loads of
// tensors the kernel writes stay where they are; results do not change.
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// s[g] = sum(x of threadgroup g) * scale[0] + bias[0]; `bias` is also written, `scale` is not.
void scaled_sum(In<f32> x, In<f32> scale, InOut<f32> bias, Out<f32> s) {
  Val total = reduce_sum(load(x[program_id(0) * lsize() + tid()]));
  Val b = load(bias[0u]);
  Val sc = load(scale[0u]);
  if_(tid() == 0u, [&] {
    store(s[program_id(0)], total * sc + b);
    store(bias[1u], b);
  });
}

void after_return(In<f32> x, In<f32> scale, Out<f32> s) {
  if_(tid() >= 1u, [&] { return_(); });
  Val total = load(x[program_id(0)]) * load(scale[0u]);
  store(s[program_id(0)], total);
}

ir::Function lowered(const KernelDef& def) {
  return passes::run_pipeline(def.trace(ScalarType::f32), Target::cuda("sm_90a"));
}

}  // namespace

TEST(HoistInvariantLoads, ReadOnlyConstantIndexLoadsMoveAboveTheBarrier) {
  ir::Function f = lowered(define_kernel("scaled_sum", ir::Mode::Reduction, {"x", "scale", "bias", "s"}, &scaled_sum));
  std::string text = ir::print(f);
  size_t barrier = text.find("barrier");
  ASSERT_NE(barrier, std::string::npos) << text;
  EXPECT_LT(text.find("load scale["), barrier) << text;  // read-only: hoisted
  EXPECT_GT(text.find("load bias["), barrier) << text;   // written by the kernel: stays
  // Same sums as the code without the pass (the CPU engine runs both).
  std::vector<float> x(64), scale{0.5f}, bias{3.0f, 0.0f}, s(2, NAN);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  mtile::testing::run_f32(f, mtile::testing::geometry(2, 32), {&x, &scale, &bias, &s});
  for (int g = 0; g < 2; ++g) {
    double sum = 0;
    for (int t = 0; t < 32; ++t) sum += x[g * 32 + t];
    EXPECT_EQ(s[g], static_cast<float>(sum * 0.5 + 3.0)) << "threadgroup " << g;
  }
}

TEST(HoistInvariantLoads, LoadsAfterAPossibleReturnStay) {
  ir::Function f = lowered(define_kernel("after_return", ir::Mode::Reduction, {"x", "scale", "s"}, &after_return));
  std::string text = ir::print(f);
  EXPECT_GT(text.find("load scale["), text.find("return")) << text;
}

TEST(HoistInvariantLoads, TheNormsReadEpsBeforeTheirRow) {
  Kernel k = find_kernel("rms_norm_residual");
  Shape shape{{"rows", 4}, {"n", 4096}};
  Resolved r = resolve(k.spec(), shape, Target::cuda("sm_90a"));
  passes::PipelineOptions opts;
  opts.bake = r.constexprs;
  opts.tpg = r.geometry.tpg;
  std::string text =
      ir::print(passes::run_pipeline(k->def.trace(ScalarType::bf16, r.config), Target::cuda("sm_90a"), opts));
  EXPECT_LT(text.find("load eps_buf["), text.find("load_vector x[")) << text;
}
