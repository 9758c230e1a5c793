// IR: printer output, verifier rules, structural hash.
#include "mtile/ir.hpp"

#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

void scale(In<f32> x, Out<f32> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[i]) * 2.0f); });
}
void scale3(In<f32> x, Out<f32> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[i]) * 3.0f); });
}

ir::Function traced(void (*fn)(In<f32>, Out<f32>, Constexpr)) {
  return define_kernel("scale", ir::Mode::Elementwise, {"x", "y", "n"}, fn).trace(ScalarType::f32);
}

}  // namespace

TEST(IrPrinter, PrintsStableText) {
  std::string text = ir::print(traced(&scale));
  const char* expected =
      "kernel scale<f32> elementwise(x: in f32*, y: out f32*, n: constexpr u32) {\n"
      "  %0 = program_id.x : u32\n"
      "  %1 = threadgroup_size : u32\n"
      "  %2 = mul %0, %1 : u32\n"
      "  %3 = thread_id : u32\n"
      "  %4 = add %2, %3 : u32\n"
      "  %5 = constexpr n : u32\n"
      "  %6 = lt %4, %5 : bool\n"
      "  if %6 {\n"
      "    %7 = load x[%4] : f32\n"
      "    %8 = const 2 : f32\n"
      "    %9 = mul %7, %8 : f32\n"
      "    store y[%4], %9 : f32\n"
      "  }\n"
      "}\n";
  EXPECT_EQ(text, expected);
  EXPECT_EQ(ir::print(traced(&scale)), text);  // deterministic
}

TEST(IrHash, EqualForEqualFunctionsAndSensitiveToConstants) {
  EXPECT_EQ(ir::structural_hash(traced(&scale)), ir::structural_hash(traced(&scale)));
  EXPECT_NE(ir::structural_hash(traced(&scale)), ir::structural_hash(traced(&scale3)));
}

TEST(IrCanonicalize, OperandEvaluationOrderDoesNotChangeTheText) {
  // The same kernel with its independent subexpressions traced in the other order.
  auto swapped = [](In<f32> x, Out<f32> y, Constexpr n) {
    Val t = tid();
    Val size = lsize();
    Val i = program_id(0) * size + t;
    if_(i < n, [&] { store(y[i], load(x[i]) * 2.0f); });
  };
  EXPECT_EQ(ir::print(traced(+swapped)), ir::print(traced(&scale)));
}

TEST(IrVerifier, AcceptsTracedKernels) {
  EXPECT_NO_THROW(ir::verify(traced(&scale)));
}

TEST(IrVerifier, RejectsUseOutsideDefiningBlock) {
  ir::Function f = traced(&scale);
  // Move the store out of the if: it then uses %9, defined inside the if.
  ir::Inst st = f.body.insts.back().blocks[0].insts.back();
  f.body.insts.back().blocks[0].insts.pop_back();
  f.body.insts.push_back(st);
  try {
    ir::verify(f);
    FAIL() << "verifier accepted a use outside the defining block";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "kernel scale")) << e.what();
    EXPECT_TRUE(contains(e.what(), "outside the block")) << e.what();
  }
}

TEST(IrVerifier, RejectsMixedOperandTypes) {
  ir::Function f = traced(&scale);
  ir::Inst& mul = f.body.insts.back().blocks[0].insts[2];  // %9 = mul %7, %8 : f32
  ASSERT_EQ(mul.op, ir::Op::Mul);
  mul.args[1] = 4;  // %4 is u32
  EXPECT_THROW(ir::verify(f), Error);
}

TEST(IrVerifier, RejectsStoreToInputAndDoubleDefinition) {
  ir::Function f = traced(&scale);
  ir::Inst& st = f.body.insts.back().blocks[0].insts.back();
  st.param = 0;  // x is an input
  try {
    ir::verify(f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "an input")) << e.what();
  }
  ir::Function g = traced(&scale);
  g.body.insts[2].result = 1;  // %1 defined twice
  EXPECT_THROW(ir::verify(g), Error);
}

// The text (and so the structural hash that keys the caches) holds every part of the newer
// instructions: masks, the atomic's operation and memory, scalar names and loop bodies.
namespace {
void newer_ops(In<f32> x, InOut<u32> counts, Out<f32> y, Scalar<f32> eps, Constexpr n) {
  Val i = tid();
  if_(i >= n, [] { return_(); });
  TgArray tg = threadgroup_array<u32>(32);
  atomic_max(tg[i % 32u], i);
  atomic_add(counts[i % 4u], lit(1u));
  Var k(lit(0u));
  while_([&] { return k.get() < 8u; },
         [&] {
           k = k.get() + 1u;
           if_(k.get() == 3u, [] { continue_(); });
           if_(k.get() == 6u, [] { break_(); });
         });
  store(y[i], load(x[i + 1u], i + 1u < n, lit(0.0f)) + eps, i < 64u);
}
template <uint32_t Stop>
void loop_stops_at(In<f32> x, Out<f32> y) {
  Var k(lit(0u));
  while_([&] { return k.get() < 8u; },
         [&] {
           k = k.get() + 1u;
           if_(k.get() == Stop, [] { break_(); });
         });
  store(y[tid()], load(x[k.get()]));
}
}  // namespace

TEST(IrText, ShowsMasksAtomicsScalarsAndLoopBodies) {
  ir::Function f = define_kernel("newer_ops", ir::Mode::Reduction, {"x", "counts", "y", "eps", "n"}, &newer_ops)
                       .trace(ScalarType::f32);
  std::string text = ir::print(f);
  for (const char* part : {"] mask %", " else %", "= atomic.max tg %", "= atomic.add counts[", "= scalar eps : f32",
                           "loop {\n", "    continue\n", "    break\n", "  return\n"})
    EXPECT_TRUE(contains(text, part)) << part << " in:\n" << text;
  EXPECT_FALSE(contains(text, "%-1")) << text;
  // Two kernels that differ only inside a loop body print, and so hash, differently.
  ir::Function a = define_kernel("stops", ir::Mode::Reduction, {"x", "y"}, &loop_stops_at<5>).trace(ScalarType::f32);
  ir::Function b = define_kernel("stops", ir::Mode::Reduction, {"x", "y"}, &loop_stops_at<6>).trace(ScalarType::f32);
  EXPECT_NE(ir::print(a), ir::print(b));
  EXPECT_NE(ir::structural_hash(a), ir::structural_hash(b));
}
