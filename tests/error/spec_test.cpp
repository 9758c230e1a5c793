// A kernel spec is checked when it is sealed: a missing field or a rule reading a name no launch
// binds is an error naming the kernel and the field, never a crash at launch time.
#include "mtile/spec.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "mtile/harness.hpp"
#include "test_util.hpp"

namespace mtile {
namespace {

using namespace dsl;
using mtile::testing::contains;

void copy(In<f32> x, Out<f32> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[i])); });
}

KernelSpec complete() {
  using rule::var;
  KernelSpec k;
  k.def = define_kernel("copy", ir::Mode::Elementwise, {"x", "y", "n"}, &copy);
  k.dims = {"n"};
  k.dispatch = {.grid = rule::ceil_div(var("n"), 128), .tpg = 128};
  // The whole geometry (tests/error/geometry_alias_test.cpp tries others on every registered kernel).
  k.preconditions = {var("grid") == rule::ceil_div(var("n"), 128), var("grid_y") == 1, var("grid_z") == 1,
                     var("tpg") == 128};
  k.sizes = {{"x", var("n")}, {"y", var("n")}};
  k.reference = [](const Shape&, HostTensors& t) { t["y"] = t["x"]; };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 300}}};
  return k;
}

std::string seal_error(KernelSpec k) {
  try {
    make_kernel(std::move(k));
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Spec, ACompleteSpecSealsAndRuns) {
  Kernel k = make_kernel(complete());
  EXPECT_EQ(k->example_shape, (Shape{{"n", 300}}));  // defaults to the first test shape
  auto cpu = make_backend("cpu");
  CheckResult r = run_and_check(*cpu, k, ScalarType::f32, {{"n", 300}});
  EXPECT_TRUE(r.passed) << r.summary();
  EXPECT_EQ(r.bytes, 2u * 300 * 4) << "default traffic: every tensor once";
}

TEST(Spec, MissingFieldsAreNamed) {
  KernelSpec k = complete();
  k.reference = nullptr;
  EXPECT_TRUE(contains(seal_error(k), "kernel copy: spec field 'reference': missing")) << seal_error(k);
  k = complete();
  k.sizes.erase("y");
  EXPECT_TRUE(contains(seal_error(k), "spec field 'sizes': tensor 'y' has no size")) << seal_error(k);
  k = complete();
  k.dispatch.tpg = {};
  EXPECT_TRUE(contains(seal_error(k), "spec field 'dispatch.tpg': missing")) << seal_error(k);
  k = complete();
  k.tolerance.erase(ScalarType::f32);
  EXPECT_TRUE(contains(seal_error(k), "spec field 'tolerance': none for dtype f32")) << seal_error(k);
  k = complete();
  k.test_shapes.clear();
  EXPECT_TRUE(contains(seal_error(k), "spec field 'test_shapes'")) << seal_error(k);
  k = complete();
  k.def = {};
  EXPECT_TRUE(contains(seal_error(k), "no definition (field 'def')")) << seal_error(k);
  k = complete();
  k.dims = {"m"};  // the constexpr n is then no dim's name, and has no rule
  k.dispatch.grid = rule::var("m");
  k.preconditions.clear();
  k.sizes = {{"x", rule::var("m")}, {"y", rule::var("m")}};
  k.test_shapes = {{{"m", 8}}};
  EXPECT_TRUE(contains(seal_error(k), "spec field 'constexprs': constexpr 'n' has no value")) << seal_error(k);
}

TEST(Spec, RulesMayOnlyReadWhatALaunchBinds) {
  KernelSpec k = complete();
  k.preconditions = {rule::var("rows") >= 1};
  std::string msg = seal_error(k);
  EXPECT_TRUE(contains(msg, "a precondition (rows >= 1) reads 'rows', which no launch gives it")) << msg;
  k = complete();
  k.dispatch.tpg = rule::var("tpg");  // the geometry is not known while it is being chosen
  msg = seal_error(k);
  EXPECT_TRUE(contains(msg, "the dispatch rule (tpg) reads 'tpg'")) << msg;
  k = complete();
  k.config = {{"tpg", 64}};
  msg = seal_error(k);
  EXPECT_TRUE(contains(msg, "meta-parameter 'tpg' is taken")) << msg;
  k = complete();
  k.sizes["z"] = 4;
  EXPECT_TRUE(contains(seal_error(k), "'z' is not a tensor parameter")) << seal_error(k);
}

// copy, with a third tensor it uses as scratch: it writes x + 1 there and reads it back.
void copy_through(In<f32> x, Out<f32> y, InOut<f32> tmp, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] {
    store(tmp[i], load(x[i]) + 1.0f);
    store(y[i], load(tmp[i]) - 1.0f);
  });
}

TEST(Spec, ScratchTensorsAreInOutAndNotCompared) {
  KernelSpec k = complete();
  k.def = define_kernel("copy_through", ir::Mode::Elementwise, {"x", "y", "tmp", "n"}, &copy_through);
  k.sizes["tmp"] = rule::var("n");
  auto cpu = make_backend("cpu");
  // The reference leaves tmp as it was drawn: compared, it fails; as scratch, it is not compared.
  CheckResult compared = run_and_check(*cpu, make_kernel(k), ScalarType::f32, {{"n", 300}});
  EXPECT_FALSE(compared.passed) << compared.summary();
  EXPECT_EQ(compared.outputs.size(), 2u);
  k.scratch = {"tmp"};
  CheckResult r = run_and_check(*cpu, make_kernel(k), ScalarType::f32, {{"n", 300}});
  EXPECT_TRUE(r.passed) << r.summary();
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].param, "y");
  k.scratch = {"y"};
  EXPECT_TRUE(contains(seal_error(k), "spec field 'scratch': 'y' is not an InOut tensor parameter")) << seal_error(k);
  k.scratch = {"nope"};
  EXPECT_TRUE(contains(seal_error(k), "'nope' is not an InOut tensor parameter")) << seal_error(k);
}

TEST(Spec, RegisteredNamesAreUnique) {
  KernelSpec k = complete();
  Kernel first = register_kernel(k);
  EXPECT_EQ(find_kernel("copy").serial(), first.serial());
  try {
    register_kernel(complete());
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "a kernel named 'copy' is already registered")) << e.what();
  }
  EXPECT_THROW(register_kernel([] {
                 KernelSpec s = complete();
                 s.def = define_kernel("vector_add", ir::Mode::Elementwise, {"x", "y", "n"}, &copy);
                 return s;
               }()),
               Error);
}

// References run their items over the host's threads when the work is large: every item once,
// and an item's exception reaches the caller after the others stop.
TEST(Spec, ParallelForRunsEveryItemOnceAndRethrows) {
  for (uint64_t work : {uint64_t{0}, uint64_t{1} << 40}) {
    std::vector<std::atomic<int>> seen(1000);
    std::mutex lock;
    std::set<std::thread::id> ids;
    spec::parallel_for(seen.size(), work, [&](uint64_t i) {
      seen[i].fetch_add(1);
      std::lock_guard<std::mutex> hold(lock);
      ids.insert(std::this_thread::get_id());
    });
    for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i << ", work " << work;
    if (work == 0) {
      EXPECT_EQ(ids.size(), 1u) << "no threads started for little work";
    }
  }
  auto fails_at_37 = [](uint64_t i) {
    if (i == 37) throw Error("item 37 failed");
  };
  EXPECT_THROW(spec::parallel_for(100, uint64_t{1} << 40, fails_at_37), Error);
}

}  // namespace
}  // namespace mtile
