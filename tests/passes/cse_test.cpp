// eliminate_common_subexpressions and propagate_copies: what they merge, what they must not, and
// that a kernel computes the same with and without them.
#include "test_util.hpp"

namespace mtile {
namespace {

using namespace dsl;
using mtile::testing::contains;

int count(const ir::Function& f, ir::Op op) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += in.op == op; });
  return n;
}

// x[i] * 2 twice, the second time after a store to y (another tensor), then after a store to x.
void repeats(InOut<f32> x, Out<f32> y) {
  Val i = tid();
  Val a = load(x[i]) * 2.0f;
  store(y[i], a);
  Val b = load(x[i]) * 2.0f;  // the same load and product: merged
  store(y[i + 32u], b);
  store(x[i], b + 1.0f);
  Val c = load(x[i]) * 2.0f;  // x was written: a new load
  store(y[i + 64u], c);
}

TEST(EliminateCommonSubexpressions, MergesRepeatsUntilTheirMemoryIsWritten) {
  ir::Function f = define_kernel("repeats", ir::Mode::Reduction, {"x", "y"}, &repeats).trace(ScalarType::f32);
  ir::Function g = passes::eliminate_common_subexpressions(f);
  EXPECT_EQ(count(f, ir::Op::Load), 3);
  EXPECT_EQ(count(g, ir::Op::Load), 2) << ir::print(g);
  EXPECT_EQ(count(g, ir::Op::Mul), 2) << ir::print(g);
  EXPECT_EQ(count(g, ir::Op::ThreadId), 1) << ir::print(g);
  ir::verify(g);
}

// A local read before and inside a loop that assigns it, and threadgroup memory across a barrier.
void loop_and_barrier(In<f32> x, Out<f32> y) {
  Var acc("acc", load(x[tid()]));
  Val before = acc.get() + 1.0f;
  for_(0u, 4u, 1u, [&](Val) {
    Val inside = acc.get() + 1.0f;  // acc changes every iteration: not the value from before the loop
    acc = inside;
  });
  TgArray t = threadgroup_array<f32>(32);
  store(t[tid()], before);
  Val mine = load(t[tid()]);
  barrier();
  Val again = load(t[tid()]);  // after a barrier: read again
  store(y[tid()], acc.get() + mine + again);
}

TEST(EliminateCommonSubexpressions, LoopsAndBarriersEndWhatItMayReuse) {
  KernelDef def = define_kernel("loop_and_barrier", ir::Mode::Reduction, {"x", "y"}, &loop_and_barrier);
  ir::Function f = passes::lower_threadgroup_reductions(passes::inline_calls(def.trace(ScalarType::f32)), 32);
  ir::Function g = passes::eliminate_common_subexpressions(f);
  EXPECT_EQ(count(g, ir::Op::LocalGet), count(f, ir::Op::LocalGet)) << ir::print(g);
  int tg_loads = 0;
  ir::for_each_inst(
      g.body, [&](const ir::Inst& in) { tg_loads += in.op == ir::Op::Load && in.space == ir::MemSpace::Threadgroup; });
  EXPECT_EQ(tg_loads, 2) << ir::print(g);
  // Same results through the whole pipeline and through the minimal lowering.
  std::vector<float> x(32), y1(32, -1), y2(32, -1);
  for (int i = 0; i < 32; ++i) x[i] = 0.25f * i - 3;
  testing::run_f32(f, testing::geometry(1, 32), {&x, &y1});
  testing::run_f32(passes::run_pipeline(def.trace(ScalarType::f32), Target::cpu()), testing::geometry(1, 32),
                   {&x, &y2});
  EXPECT_EQ(y1, y2);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y1[i], (x[i] + 4) + 2 * (x[i] + 1)) << i;
}

void read_only_local(In<f32> x, Out<f32> y) {
  Var scale("scale", load(x[0u]) * 3.0f);  // never assigned again
  Var sum("sum", lit(0.0f));
  for_(0u, 3u, 1u, [&](Val) { sum += scale; });
  store(y[tid()], sum.get() + scale.get());
}

TEST(PropagateCopies, ALocalNeverAssignedReadsAsItsValue) {
  KernelDef def = define_kernel("read_only_local", ir::Mode::Reduction, {"x", "y"}, &read_only_local);
  ir::Function f = def.trace(ScalarType::f32);
  ir::Function g = passes::eliminate_dead_code(passes::propagate_copies(f));
  EXPECT_EQ(count(f, ir::Op::LocalDecl), 2);
  EXPECT_EQ(count(g, ir::Op::LocalDecl), 1) << ir::print(g);  // sum stays: it is assigned
  EXPECT_TRUE(contains(ir::print(g), "local %sum")) << ir::print(g);
  EXPECT_FALSE(contains(ir::print(g), "%scale")) << "names of removed values go with them";
  std::vector<float> x(32, 2.0f), y1(32), y2(32);
  testing::run_f32(passes::run_pipeline(f, Target::cpu()), testing::geometry(1, 32), {&x, &y1});
  testing::run_f32(passes::lower_threadgroup_reductions(f, 32), testing::geometry(1, 32), {&x, &y2});
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(y1[5], 24.0f);
}

TEST(Names, ShowInTheIrAndTheGeneratedCode) {
  KernelDef def = define_kernel("read_only_local", ir::Mode::Reduction, {"x", "y"}, &read_only_local);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::f32), Target::cpu());
  EXPECT_TRUE(contains(ir::print(f), "local %sum : f32")) << ir::print(f);
  std::string cuda = codegen::emit_cuda(f);
  EXPECT_TRUE(contains(cuda, "float sum = 0.0f;")) << cuda;
  EXPECT_TRUE(contains(cuda, "sum = __fadd_rn(sum, ")) << cuda;
}

}  // namespace
}  // namespace mtile
