// Every registered kernel, on its first test shape, launched with broken geometry, other Config
// values and outputs passed again as other tensors: each attempt is refused with an Error before
// anything runs, or runs (on the CPU engine with its sanitizer) and matches the float64
// reference. Never a wrong answer.
#include <fmt/format.h>

#include <cstdio>
#include <random>

#include "counting_backend.hpp"
#include "ir/eval.hpp"
#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;
using mtile::testing::CountingBackend;

namespace {

std::unique_ptr<CountingBackend> sanitized() {
  return std::make_unique<CountingBackend>(make_backend("cpu:sanitize"));
}

struct Attempt {
  std::string what;
  LaunchOptions launch;
};

// The geometry overrides every kernel must survive: one more or one fewer threadgroup, a second
// axis, threadgroups of half, twice, 1 and 2048 threads.
std::vector<Attempt> geometry_attempts(const Kernel& k, const Shape& s, const Target& t) {
  const Geometry g = resolve(k.spec(), s, t).geometry;
  std::vector<Attempt> out;
  auto add = [&](std::string what, auto edit) {
    Attempt a{std::move(what), {}};
    a.launch.geometry = g;
    edit(*a.launch.geometry);
    out.push_back(std::move(a));
  };
  add("grid x + 1", [](Geometry& h) { ++h.grid[0]; });
  if (g.grid[0] > 1) add("grid x - 1", [](Geometry& h) { --h.grid[0]; });
  add("grid_y = 2", [](Geometry& h) { h.grid[1] = 2; });
  add("grid_z = 2", [](Geometry& h) { h.grid[2] = 2; });
  add("tpg / 2", [](Geometry& h) { h.tpg /= 2; });
  add("tpg * 2", [](Geometry& h) { h.tpg *= 2; });
  add("tpg = 1", [](Geometry& h) { h.tpg = 1; });
  add("tpg = 2048", [](Geometry& h) { h.tpg = 2048; });
  return out;
}

// Each meta-parameter at twice and half the value its rule chooses.
std::vector<Attempt> config_attempts(const Kernel& k, const Shape& s, const Target& t) {
  const Config chosen = resolve(k.spec(), s, t).config;
  std::vector<Attempt> out;
  for (const auto& [name, v] : chosen)
    for (uint32_t changed : {v * 2, v / 2}) {
      Attempt a{fmt::format("config {}={}", name, changed), {}};
      a.launch.config[name] = changed;
      out.push_back(std::move(a));
    }
  return out;
}

struct Tally {
  int refused = 0, ran = 0;
};

// Runs one attempt: refused before anything ran, or right.
void expect_refused_or_right(const Kernel& k, const Shape& s, const Attempt& a, Tally& tally) {
  auto b = sanitized();
  const std::string where = fmt::format("{} {} with {}", k.name(), shape_text(s), a.what);
  try {
    CheckOptions opts;
    opts.launch = a.launch;
    CheckResult r = run_and_check(*b, k, k->def.dtypes().front(), s, opts);
    EXPECT_TRUE(r.passed) << where << " ran and gave a wrong answer: " << r.summary();
    ++tally.ran;
  } catch (const Error& e) {
    EXPECT_EQ(b->runs, 0) << where << " failed while it ran instead of being refused: " << e.what();
    EXPECT_TRUE(contains(e.what(), "kernel " + k.name())) << e.what();
    ++tally.refused;
  }
}

// Host buffers of one launch, in float64 and on the backend, with tensor `from` given the buffer
// of output `to` (or every tensor its own when from < 0).
struct AliasedLaunch {
  std::vector<Buffer> own;    // per parameter
  std::vector<Buffer*> args;  // per parameter
  HostTensors host;
};

void fill(Backend& b, const ir::Param& p, Buffer& buf, std::vector<double>& values, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(buf.bytes());
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  values.resize(buf.count);
  for (uint64_t e = 0; e < buf.count; ++e) {
    ir::Scalar v;
    v.u64 = 0;
    v.f = static_cast<float>(dist(rng));
    if (!is_float(p.elem)) v.u = static_cast<uint32_t>(rng() % 64);
    ir::store_element(p.elem, bytes.data(), e, v);
    ir::Scalar back = ir::load_element(p.elem, bytes.data(), e);
    values[e] = is_float(p.elem) ? back.f : back.u;
  }
  b.upload(buf, bytes.data());
}

// Launches `k` with tensor `from` given output `to`'s buffer: refused before it runs, or right
// with both reading and writing the one buffer.
void expect_alias_refused_or_right(const Kernel& k, const Shape& s, int to, int from, Tally& tally) {
  auto b = sanitized();
  const ScalarType dtype = k->def.dtypes().front();
  auto plan = Context::global().plan(*b, k, dtype, s);
  const auto& params = plan->params();
  std::vector<std::string> names;
  for (const ir::Param& p : params) names.push_back(p.kind == ir::ParamKind::Constexpr ? "" : p.name);
  HostTensors host(k.name(), dtype, names);
  std::vector<Buffer> bufs(params.size());
  std::vector<Buffer*> args(params.size(), nullptr);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor && static_cast<int>(i) != from) {
      bufs[i] = b->alloc(params[i].elem, plan->elements[i]);
      fill(*b, params[i], bufs[i], host.at(i), rng);
      args[i] = &bufs[i];
    }
  args[from] = &bufs[to];
  host.at(from) = host.at(to);
  const std::string where =
      fmt::format("{} {} with '{}' passed as '{}'", k.name(), shape_text(s), params[to].name, params[from].name);
  try {
    Context::global().run(*b, *plan, args);
    k->reference(s, host);
    std::vector<uint8_t> bytes(bufs[to].bytes());
    b->download(bufs[to], bytes.data());
    const Tolerance tol = k->tolerance.at(dtype);
    for (uint64_t e = 0; e < plan->elements[to]; ++e) {
      double got = ir::load_element(params[to].elem, bytes.data(), e).f;
      ASSERT_NEAR(got, host.at(to)[e], tol.max_abs) << where << ", element " << e;
    }
    ++tally.ran;
  } catch (const Error& e) {
    EXPECT_EQ(b->runs, 0) << where << " failed while it ran instead of being refused: " << e.what();
    EXPECT_TRUE(contains(e.what(), "kernel " + k.name())) << e.what();
    ++tally.refused;
  }
  for (Buffer& buf : bufs)
    if (buf.owner) b->release(buf);
}

}  // namespace

TEST(GeometryAndAliasing, EveryKernelRefusesOrComputesRightUnderBrokenGeometry) {
  Tally tally;
  const Target cpu = Target::cpu();
  for (const Kernel& k : kernels()) {
    const Shape& s = k->test_shapes.front();
    for (const Attempt& a : geometry_attempts(k, s, cpu)) expect_refused_or_right(k, s, a, tally);
  }
  EXPECT_GT(tally.refused, 0);
  std::printf("geometry overrides: %d refused, %d ran and matched the reference\n", tally.refused, tally.ran);
}

TEST(GeometryAndAliasing, EveryKernelRefusesOrComputesRightWithOtherConfigValues) {
  Tally tally;
  const Target cpu = Target::cpu();
  for (const Kernel& k : kernels()) {
    const Shape& s = k->test_shapes.front();
    for (const Attempt& a : config_attempts(k, s, cpu)) expect_refused_or_right(k, s, a, tally);
  }
  EXPECT_GT(tally.ran, 0) << "some Config values other than the rules' choice are valid";
  std::printf("config overrides: %d refused, %d ran and matched the reference\n", tally.refused, tally.ran);
}

TEST(GeometryAndAliasing, EveryOutputPassedAsAnotherTensorIsRefused) {
  Tally tally;
  for (const Kernel& k : kernels()) {
    const Shape& s = k->test_shapes.front();
    const auto& params = k->def.params();
    for (size_t to = 0; to < params.size(); ++to) {
      if (params[to].kind != ir::ParamKind::Tensor || params[to].role == ir::Role::In) continue;
      for (size_t from = 0; from < params.size(); ++from)
        if (from != to && params[from].kind == ir::ParamKind::Tensor)
          expect_alias_refused_or_right(k, s, static_cast<int>(to), static_cast<int>(from), tally);
    }
  }
  EXPECT_GT(tally.refused, 20);
  EXPECT_EQ(tally.ran, 0) << "no library kernel declares an output and another tensor one buffer (may_alias)";
}

TEST(GeometryAndAliasing, TheRefusalNamesTheKernelBothTensorsAndTheirRanges) {
  auto b = sanitized();
  Kernel k = find_kernel("vector_add");
  Shape s{{"n", 256}};
  Buffer a = b->alloc(ScalarType::f32, 256), c = b->alloc(ScalarType::f32, 256);
  try {
    launch(*b, k, ScalarType::f32, s, {&a, &c, &c, nullptr});
    FAIL() << "c passed as b ran";
  } catch (const Error& e) {
    std::string msg = e.what();
    std::string range = fmt::format("[0x{:x}, 0x{:x})", c.handle, c.handle + 1024);
    EXPECT_TRUE(contains(msg, "kernel vector_add: output 'c' " + range + " overlaps 'b' " + range)) << msg;
    EXPECT_TRUE(contains(msg, "KernelSpec::may_alias")) << msg;
    EXPECT_TRUE(contains(msg, "Nothing was launched")) << msg;
  }
  // A partial overlap: b starts 16 elements into c's memory.
  Buffer inside = b->wrap(c.handle + 64, ScalarType::f32, 240);
  Buffer bigger = b->alloc(ScalarType::f32, 300);
  EXPECT_THROW(launch(*b, k, ScalarType::f32, {{"n", 240}}, {&a, &inside, &c, nullptr}), Error);
  // Inputs may share memory with each other: a and b one buffer is fine.
  launch(*b, k, ScalarType::f32, s, {&bigger, &bigger, &c, nullptr});
  EXPECT_EQ(b->runs, 1);
  for (Buffer* x : {&a, &c, &bigger}) b->release(*x);
}

namespace {

// y = 2 * x, each element read and written by one thread: correct in place.
void twice(dsl::In<dsl::f32> x, dsl::Out<dsl::f32> y) {
  using namespace dsl;
  Val i = program_id(0) * lsize() + tid();
  store(y[i], load(x[i]) * 2.0f);
}

KernelSpec twice_spec() {
  using rule::var;
  KernelSpec k;
  k.def = dsl::define_kernel("twice", ir::Mode::Elementwise, {"x", "y"}, &twice);
  k.dims = {"n"};
  k.dispatch = {.grid = rule::ceil_div(var("n"), 64), .tpg = 64};
  k.preconditions = {var("n") % 64 == 0, var("grid") * 64 == var("n"), var("grid_y") == 1, var("grid_z") == 1,
                     var("tpg") == 64};
  k.sizes = {{"x", var("n")}, {"y", var("n")}};
  k.reference = [](const Shape&, HostTensors& t) {
    for (size_t i = 0; i < t["x"].size(); ++i) t["y"][i] = 2 * t["x"][i];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 128}}};
  return k;
}

}  // namespace

TEST(GeometryAndAliasing, ADeclaredPairRunsInPlaceAndOnlyAsOneBuffer) {
  KernelSpec spec = twice_spec();
  spec.may_alias = {{"y", "x"}};
  Kernel k = make_kernel(spec);
  Tally tally;
  expect_alias_refused_or_right(k, {{"n", 128}}, 1, 0, tally);
  EXPECT_EQ(tally.ran, 1) << "x and y as one buffer ran and matched 2 * x";
  // Its code keeps x and y in order and the CUDA code does not declare them __restrict__.
  auto b = sanitized();
  auto plan = Context::global().plan(*b, k, ScalarType::f32, {{"n", 128}});
  EXPECT_TRUE(plan->lowered->fn.params[0].may_alias && plan->lowered->fn.params[1].may_alias);
  EXPECT_TRUE(contains(ir::print(plan->lowered->fn), "x: in f32* may_alias")) << ir::print(plan->lowered->fn);
  ir::Function traced = k->def.trace(ScalarType::f32);
  mark_may_alias(k.spec(), traced);
  std::string cuda = codegen::emit_cuda(passes::run_pipeline(traced, Target::cuda("sm_90a")));
  EXPECT_FALSE(contains(cuda, "__restrict__")) << cuda;
  // Partly overlapping is still refused: y starts 64 elements into x.
  Buffer x = b->alloc(ScalarType::f32, 256);
  Buffer y = b->wrap(x.handle + 256, ScalarType::f32, 128);
  try {
    launch(*b, k, ScalarType::f32, {{"n", 128}}, {&x, &y});
    FAIL() << "a partial overlap ran";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "may take them as one buffer (may_alias), but not partly overlapping")) << e.what();
  }
  b->release(x);
}

TEST(GeometryAndAliasing, MayAliasNamesAreChecked) {
  auto refusal = [](std::vector<std::pair<std::string, std::string>> pairs) {
    KernelSpec spec = twice_spec();
    spec.may_alias = std::move(pairs);
    try {
      make_kernel(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("sealed");
  };
  EXPECT_TRUE(contains(refusal({{"y", "z"}}), "kernel twice: spec field 'may_alias': 'z' (in {y, z}) is not a tensor"));
  EXPECT_TRUE(contains(refusal({{"y", "y"}}), "names one tensor twice"));
  EXPECT_EQ(refusal({{"y", "x"}}), "sealed");
}

TEST(GeometryAndAliasing, RmsInvScalarPinsItsThreadsPerThreadgroup) {
  // A finding of the reliability probe: mt_rms_inv_scalar had no tpg == threads rule.
  Kernel k = find_kernel("mt_rms_inv_scalar");
  bool pinned = false;
  for (const rule::Expr& e : k->preconditions) pinned |= e.text() == "tpg == threads";
  EXPECT_TRUE(pinned);
  CountingBackend b;
  Shape s{{"rows", 3}, {"threads", 64}, {"n", 128}};
  Geometry g = resolve(k.spec(), s, b.target()).geometry;
  g.tpg = 32;
  CheckOptions opts;
  opts.launch.geometry = g;
  try {
    run_and_check(b, k, ScalarType::f32, s, opts);
    FAIL() << "tpg 32 for threads = 64 ran";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "tpg == threads (tpg = 32, threads = 64)")) << e.what();
  }
  EXPECT_EQ(b.runs, 0);
}
