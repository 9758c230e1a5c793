// inline_calls: value arguments replace the callee's loads, tensors and constexprs are renamed,
// the single output store becomes the result; control flow and nested calls work.
#include "mtile/registry.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// r = |v| * n + sum_{i < n} table[i], with control flow, a loop and a local.
void leaf(In<f32> v, In<f32> table, Out<f32> r, Constexpr n) {
  Val x = load(v[tid()]);
  Var a(x);
  if_(x < 0.0f, [&] { a = -x; });
  Var sum(lit(0.0f));
  for_(0u, n, 1u, [&](Val i) { sum += load(table[i]); });
  store(r[program_id(0)], a * n.cast<f32>() + sum);
}
KernelDef leaf_def() {
  return define_kernel("leaf", ir::Mode::Reduction, {"v", "table", "r", "n"}, &leaf);
}

// Nested: calls leaf with 2 * v, then adds 1.
void middle(In<f32> v, In<f32> table, Out<f32> r, Constexpr n) {
  Val twice = load(v[0u]) * 2.0f;
  store(r[0u], call(leaf_def(), {twice, table, n}) + 1.0f);
}
KernelDef middle_def() {
  return define_kernel("middle", ir::Mode::Reduction, {"v", "table", "r", "n"}, &middle);
}

void top(In<f32> x, In<f32> tab, Out<f32> y, Constexpr m) {
  Val i = tid();
  store(y[i], call(middle_def(), {load(x[i]), tab, m}));
}
KernelDef top_def() {
  return define_kernel("top", ir::Mode::Reduction, {"x", "tab", "y", "m"}, &top);
}

}  // namespace

TEST(InlineCalls, RemovesEveryCallAndCalleeParameterAccess) {
  ir::Function f = top_def().trace(ScalarType::f32);
  ASSERT_TRUE(contains(ir::print(f), "call @middle("));
  ASSERT_TRUE(contains(ir::print(f), "call @leaf("));  // nested callee printed after its caller
  ir::Function g = passes::inline_calls(f);
  ir::verify(g);
  std::string text = ir::print(g);
  EXPECT_FALSE(contains(text, "call @")) << text;
  EXPECT_FALSE(contains(text, "load v[")) << text;      // value argument replaced the loads
  EXPECT_FALSE(contains(text, "load table[")) << text;  // tensor argument renamed...
  EXPECT_TRUE(contains(text, "load tab[")) << text;     // ...to the caller's parameter
  EXPECT_FALSE(contains(text, "store r[")) << text;     // the output store became the result
  EXPECT_FALSE(contains(text, "constexpr n")) << text;  // the constexpr became the argument
}

TEST(InlineCalls, InlinedCodeComputesTheCalleesFunction) {
  ir::Function g = passes::run_pipeline(top_def().trace(ScalarType::f32), Target::cpu());
  const uint32_t m = 5, threads = 64;
  std::vector<float> x(threads), tab(m), y(threads, NAN);
  for (uint32_t i = 0; i < threads; ++i) x[i] = (static_cast<float>(i) - 30.5f) * 0.25f;
  for (uint32_t i = 0; i < m; ++i) tab[i] = 0.5f + i;
  mtile::testing::run_f32(g, mtile::testing::geometry(1, threads), {&x, &tab, &y}, {0, 0, 0, m});
  float table_sum = 0;
  for (float t : tab) table_sum += t;
  for (uint32_t i = 0; i < threads; ++i) {
    float want = std::fabs(2.0f * x[i]) * m + table_sum + 1.0f;
    EXPECT_FLOAT_EQ(y[i], want) << "thread " << i;
  }
}

TEST(InlineCalls, SeedKernelIsInlinedAndMatchesStandaloneCallee) {
  Kernel seed = find_kernel("ffai_rms_norm_residual");
  ir::Function traced = seed->def.trace(ScalarType::bf16);
  EXPECT_TRUE(contains(ir::print(traced), "call @mt_rms_inv_scalar("));
  std::string lowered = ir::print(passes::run_pipeline(traced, Target::cpu()));
  EXPECT_FALSE(contains(lowered, "call")) << lowered;
  EXPECT_TRUE(contains(lowered, "simd_sum")) << lowered;  // the callee's reduction, lowered
  EXPECT_FALSE(contains(lowered, "partial_ssq")) << lowered;
}

TEST(InlineCalls, RejectsCalleeThatReadsItsOutput) {
  auto reads_out = [](In<f32> v, InOut<f32> r) { store(r[0u], load(r[0u]) + load(v[0u])); };
  static KernelDef bad = define_kernel("reads_out", ir::Mode::Reduction, {"v", "r"}, +reads_out);
  auto caller = [](In<f32> x, Out<f32> y) { store(y[0u], call(bad, {load(x[0u])})); };
  ir::Function f = define_kernel("caller", ir::Mode::Reduction, {"x", "y"}, +caller).trace(ScalarType::f32);
  try {
    passes::inline_calls(f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "reads its output 'r'")) << e.what();
  }
}
