// DSL misuse fails at trace time with the kernel's name and what was wrong.
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

std::string trace_error(KernelDef def) {
  try {
    def.trace(def.dtypes()[0]);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void mixed_types(In<f32> x, Out<f32> y) {
  store(y[tid()], load(x[tid()]) + tid());
}
void store_to_input(In<f32> x, Out<f32> y) {
  store(x[tid()], load(x[tid()]));
  store(y[tid()], lit(0.0f));
}
void store_wrong_type(In<f32> x, Out<f16> y) {
  store(y[tid()], load(x[tid()]));
}
void escaped_value(In<f32> x, Out<f32> y) {
  Val inner;
  if_(tid() < 4u, [&] { inner = load(x[tid()]); });
  store(y[tid()], inner);
}
void float_literal_on_u32(In<f32> x, Out<f32> y) {
  store(y[tid() * 1.5f], load(x[tid()]));
}
void float_index(In<f32> x, Out<f32> y) {
  store(y[load(x[0u])], lit(1.0f));
}
void non_bool_if(In<f32> x, Out<f32> y) {
  if_(tid(), [&] { store(y[tid()], load(x[tid()])); });
}
void callee(In<f32> v, Out<f32> r, Constexpr n) {
  store(r[0u], load(v[0u]) * n.cast<f32>());
}
KernelDef callee_def() {
  return define_kernel("callee", ir::Mode::Reduction, {"v", "r", "n"}, &callee);
}
void bad_call(In<f32> x, Out<f32> y) {
  store(y[tid()], call(callee_def(), {load(x[tid()])}));
}
void call_wrong_type(In<f32> x, Out<f32> y) {
  store(y[tid()], call(callee_def(), {tid(), 4u}) + load(x[0u]));
}

}  // namespace

TEST(DslErrors, MixedTypesNeedACast) {
  auto msg = trace_error(define_kernel("mixed", ir::Mode::Reduction, {"x", "y"}, &mixed_types));
  EXPECT_TRUE(contains(msg, "kernel mixed<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "f32 and u32")) << msg;
  EXPECT_TRUE(contains(msg, "cast")) << msg;
}

TEST(DslErrors, StoreToAnInput) {
  auto msg = trace_error(define_kernel("writes_input", ir::Mode::Reduction, {"x", "y"}, &store_to_input));
  EXPECT_TRUE(contains(msg, "kernel writes_input<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "store to 'x', which is an input")) << msg;
  EXPECT_TRUE(contains(msg, "dsl_errors_test.cpp")) << msg;  // names the source line
}

TEST(DslErrors, StoreOfWrongElementType) {
  auto msg = trace_error(define_kernel("narrow", ir::Mode::Reduction, {"x", "y"}, &store_wrong_type));
  EXPECT_TRUE(contains(msg, "store of a f32 value into 'y' of f16")) << msg;
}

TEST(DslErrors, ValueUsedOutsideItsScope) {
  auto msg = trace_error(define_kernel("escape", ir::Mode::Reduction, {"x", "y"}, &escaped_value));
  EXPECT_TRUE(contains(msg, "kernel escape<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "outside the if_/for_ body that made it")) << msg;
}

TEST(DslErrors, LiteralsMustFitTheirNeighbour) {
  auto msg = trace_error(define_kernel("lit", ir::Mode::Reduction, {"x", "y"}, &float_literal_on_u32));
  EXPECT_TRUE(contains(msg, "float literal 1.5 next to a u32 value")) << msg;
  msg = trace_error(define_kernel("idx", ir::Mode::Reduction, {"x", "y"}, &float_index));
  EXPECT_TRUE(contains(msg, "index must be u32 or u64, got f32")) << msg;
  msg = trace_error(define_kernel("cond", ir::Mode::Reduction, {"x", "y"}, &non_bool_if));
  EXPECT_TRUE(contains(msg, "if_ condition must be bool, got u32")) << msg;
}

TEST(DslErrors, CallArgumentsAreChecked) {
  auto msg = trace_error(define_kernel("caller", ir::Mode::Reduction, {"x", "y"}, &bad_call));
  EXPECT_TRUE(contains(msg, "call of callee: 1 arguments given, it takes 2")) << msg;
  msg = trace_error(define_kernel("caller2", ir::Mode::Reduction, {"x", "y"}, &call_wrong_type));
  EXPECT_TRUE(contains(msg, "value for 'v' is u32, the callee expects f32")) << msg;
}

TEST(DslErrors, ParameterNamesMustMatch) {
  auto msg = trace_error(define_kernel("names", ir::Mode::Reduction, {"x"}, &mixed_types));
  EXPECT_TRUE(contains(msg, "1 parameter names given for 2 parameters")) << msg;
}

void copy_kernel(In<f32> x, Out<f32> y) {
  store(y[tid()], load(x[tid()]));
}

TEST(DslErrors, AFailedTraceLeavesNothingBehind) {
  // A trace that fails in its set-up, then one that fails in its body: neither may leave a
  // trace open (the DSL would then append to it, or report it as the kernel being traced).
  trace_error(define_kernel("names", ir::Mode::Reduction, {"x"}, &mixed_types));
  trace_error(define_kernel("mixed", ir::Mode::Reduction, {"x", "y"}, &mixed_types));
  try {
    tid();
    FAIL() << "a trace was left open";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "outside a kernel trace")) << e.what();
  }
  ir::Function f = define_kernel("copy", ir::Mode::Reduction, {"x", "y"}, &copy_kernel).trace(ScalarType::f32);
  EXPECT_EQ(f.name, "copy");
  EXPECT_TRUE(contains(ir::print(f), "store y[")) << ir::print(f);
}

// A kernel that calls itself, and two that call each other: each call traces its callee inside
// the caller's trace, so without a check these recurse until the stack overflows.
const KernelDef& self_calling_def();
const KernelDef& ping_def();
const KernelDef& pong_def();
void self_calling(In<f32> x, Out<f32> y) {
  store(y[0u], call(self_calling_def(), {load(x[0u])}));
}
void ping(In<f32> x, Out<f32> y) {
  store(y[0u], call(pong_def(), {load(x[0u])}));
}
void pong(In<f32> x, Out<f32> y) {
  store(y[0u], call(ping_def(), {load(x[0u])}));
}
const KernelDef& self_calling_def() {
  static const KernelDef d = define_kernel("self_calling", ir::Mode::Reduction, {"x", "y"}, &self_calling);
  return d;
}
const KernelDef& ping_def() {
  static const KernelDef d = define_kernel("ping", ir::Mode::Reduction, {"x", "y"}, &ping);
  return d;
}
const KernelDef& pong_def() {
  static const KernelDef d = define_kernel("pong", ir::Mode::Reduction, {"x", "y"}, &pong);
  return d;
}

TEST(DslErrors, ARecursiveKernelIsATraceErrorNotAStackOverflow) {
  std::string msg = trace_error(self_calling_def());
  EXPECT_TRUE(contains(msg, "kernel self_calling<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "kernel self_calling calls itself (self_calling -> self_calling)")) << msg;
  msg = trace_error(ping_def());
  EXPECT_TRUE(contains(msg, "kernel ping calls itself (ping -> pong -> ping)")) << msg;
  // Nothing is left open: the next trace works.
  EXPECT_EQ(define_kernel("copy", ir::Mode::Reduction, {"x", "y"}, &copy_kernel).trace(ScalarType::f32).name, "copy");
}

void reads_config(In<f32> x, Out<f32> y) {
  uint32_t k = config("unroll");
  for (uint32_t i = 0; i < k; ++i) store(y[tid() * k + i], load(x[tid() * k + i]));
}

TEST(DslErrors, ConfigValuesAreReadAtTraceTime) {
  KernelDef def = define_kernel("unrolled", ir::Mode::Reduction, {"x", "y"}, &reads_config);
  int stores2 = 0, stores4 = 0;
  ir::for_each_inst(def.trace(ScalarType::f32, {{"unroll", 2}}).body,
                    [&](const ir::Inst& in) { stores2 += in.op == ir::Op::Store; });
  ir::for_each_inst(def.trace(ScalarType::f32, {{"unroll", 4}}).body,
                    [&](const ir::Inst& in) { stores4 += in.op == ir::Op::Store; });
  EXPECT_EQ(stores2, 2);
  EXPECT_EQ(stores4, 4);
  auto msg = trace_error(def);  // no Config at all
  EXPECT_TRUE(contains(msg, "kernel unrolled<f32>")) << msg;
  EXPECT_TRUE(contains(msg, "config('unroll'): the kernel's Config has no 'unroll'")) << msg;
}

TEST(DslErrors, AVariantThatDoesNotExist) {
  KernelDef def = define_kernel("copy", ir::Mode::Reduction, {"x", "y"}, &copy_kernel);
  try {
    def.trace(ScalarType::bf16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "kernel copy: no bf16 variant (dtypes: f32)")) << e.what();
  }
}

TEST(DslErrors, UndeclaredConstexprIsRejected) {
  ir::Function f = callee_def().trace(ScalarType::f32);
  try {
    passes::specialize_constexprs(f, {{"m", 3}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "kernel callee: no constexpr parameter 'm'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "constexprs: n")) << e.what();
  }
}

TEST(DslErrors, DslOutsideATrace) {
  try {
    tid();
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "outside a kernel trace")) << e.what();
  }
}

namespace {

using namespace mtile;
using namespace mtile::dsl;

void barrier_under_tid(In<f32> x, Out<f32> y) {
  if_(tid() < 16u, [&] { barrier(); });
  store(y[tid()], load(x[tid()]));
}
void reduce_in_thread_loop(In<f32> x, Out<f32> y) {
  Var acc(lit(0.0f));
  for_(tid(), 64u, 32u, [&](Val i) { acc = acc + reduce_sum(load(x[i])); });
  store(y[tid()], acc.get());
}
void barrier_after_divergent_return(In<f32> x, Out<f32> y) {
  if_(tid() == 3u, [&] { return_(); });
  barrier();
  store(y[tid()], load(x[tid()]));
}
void local_made_divergent_in_loop(In<f32> x, Out<f32> y) {
  Var k(lit(0u));
  for_(0u, 4u, 1u, [&](Val) {
    if_(k.get() > 2u, [&] { barrier(); });  // k is uniform in the first iteration only
    k = k.get() + tid();
  });
  store(y[tid()], load(x[tid()]));
}
void barrier_under_simd_group(In<f32> x, Out<f32> y) {
  if_(simd_group() == 0u, [&] { barrier(); });
  store(y[tid()], load(x[tid()]));
}
void while_with_divergent_break(In<f32> x, Out<f32> y) {
  Var i(lit(0u));
  while_([&] { return i.get() < 8u; },
         [&] {
           if_(load(x[tid()]) > 0.5f, [&] { break_(); });
           barrier();
           i = i.get() + 1u;
         });
  store(y[tid()], load(x[tid()]));
}
// Accepted: uniform conditions and bounds, and simd ops under a simdgroup-uniform condition.
void uniform_enough(In<f32> x, Out<f32> y, Constexpr n) {
  Var acc(lit(0.0f));
  if_(program_id(0) < 3u, [&] { barrier(); });
  for_(0u, n, 1u, [&](Val i) { acc = acc + reduce_sum(load(x[i])); });
  if_(simd_group() == 1u, [&] { acc = acc + simd_sum(load(x[tid()])); });
  Var j(lit(0u));
  while_([&] { return j.get() < n; },
         [&] {
           barrier();
           j = j.get() + 1u;
         });
  store(y[tid()], acc.get());
}

std::string uniformity_error(const KernelDef& def) {
  try {
    def.trace(ScalarType::f32);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Uniformity, BarriersAndSimdOpsInDivergentControlFlowAreTraceErrors) {
  using mtile::testing::contains;
  auto def = [](const char* name, auto fn) { return define_kernel(name, ir::Mode::Reduction, {"x", "y"}, fn); };
  std::string msg = uniformity_error(def("a", &barrier_under_tid));
  EXPECT_TRUE(contains(msg, "kernel a<f32>: barrier at dsl_errors_test.cpp:")) << msg;
  EXPECT_TRUE(contains(msg, "differs between threads (an if_ whose condition differs between threads")) << msg;
  msg = uniformity_error(def("b", &reduce_in_thread_loop));
  EXPECT_TRUE(contains(msg, "threadgroup_reduce_sum")) << msg;
  EXPECT_TRUE(contains(msg, "a for_ whose bounds differ between threads")) << msg;
  msg = uniformity_error(def("c", &barrier_after_divergent_return));
  EXPECT_TRUE(contains(msg, "a return_ that only some threads take")) << msg;
  msg = uniformity_error(def("d", &local_made_divergent_in_loop));
  EXPECT_TRUE(contains(msg, "kernel d<f32>: barrier")) << msg;
  msg = uniformity_error(def("e", &barrier_under_simd_group));
  EXPECT_TRUE(contains(msg, "differs between simdgroups")) << msg;
  msg = uniformity_error(def("f", &while_with_divergent_break));
  EXPECT_TRUE(contains(msg, "kernel f<f32>: barrier")) << msg;
  EXPECT_TRUE(contains(msg, "some threads leave early")) << msg;
  EXPECT_EQ(uniformity_error(define_kernel("ok", ir::Mode::Reduction, {"x", "y", "n"}, &uniform_enough)), "no error");
}
