// The Context: kernel identity is the definition (not the name), caches are bounded and counted,
// launches from many host threads share one context, Config overrides are checked, and memory
// the caller owns is launched on directly.
#include <atomic>
#include <thread>

#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

namespace mtile {
namespace {

using namespace dsl;
using mtile::testing::contains;

// y = K * x over n elements: one body per K, each defined under the same name "twin".
template <int K>
void scale_by(In<f32> x, Out<f32> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[i]) * static_cast<float>(K)); });
}

template <int K>
Kernel twin() {
  using rule::var;
  KernelSpec k;
  k.def = define_kernel("twin", ir::Mode::Elementwise, {"x", "y", "n"}, &scale_by<K>);
  k.dims = {"n"};
  k.config = {{"threads", 64}};
  k.dispatch = {.grid = rule::ceil_div(var("n"), var("threads")), .tpg = var("threads")};
  k.sizes = {{"x", var("n")}, {"y", var("n")}};
  k.reference = [](const Shape&, HostTensors& t) {
    for (size_t i = 0; i < t["x"].size(); ++i) t["y"][i] = K * t["x"][i];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 100}}};
  return make_kernel(std::move(k));
}

TEST(Context, TwoKernelsWithOneNameEachRunTheirOwnCode) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel two = twin<2>(), three = twin<3>();
  ASSERT_EQ(two.name(), three.name());
  CheckOptions opts;
  opts.keep_outputs = true;
  for (int round = 0; round < 2; ++round) {  // the second round is served from the caches
    CheckResult a = run_and_check(ctx, cpu, two, ScalarType::f32, {{"n", 100}}, opts);
    CheckResult b = run_and_check(ctx, cpu, three, ScalarType::f32, {{"n", 100}}, opts);
    EXPECT_TRUE(a.passed) << a.summary();
    EXPECT_TRUE(b.passed) << b.summary();
    // Same inputs (same seed): the outputs are 2x and 3x of them.
    for (size_t i = 0; i < 100; ++i) ASSERT_FLOAT_EQ(b.output_values[0][i] * 2, a.output_values[0][i] * 3) << i;
  }
  Context::Counts c = ctx.counts();
  EXPECT_EQ(c.traced.misses, 2u);
  EXPECT_EQ(c.lowered.misses, 2u);
  EXPECT_EQ(c.compiled.misses, 2u);
  EXPECT_EQ(c.plans.misses, 2u);
  EXPECT_EQ(c.plans.hits, 2u);
}

TEST(Context, CachesAreBoundedLeastRecentlyUsedFirst) {
  Context::Limits limits;
  limits.plans = 2;
  limits.lowered = 3;
  Context ctx(limits);
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("vector_add");
  for (uint32_t n : {64u, 65u, 66u, 67u, 68u})
    EXPECT_TRUE(run_and_check(ctx, cpu, k, ScalarType::f32, {{"n", n}}).passed);
  Context::Counts c = ctx.counts();
  EXPECT_EQ(c.plans.entries, 2u);
  EXPECT_EQ(c.plans.capacity, 2u);
  EXPECT_EQ(c.plans.evictions, 3u);
  EXPECT_EQ(c.lowered.entries, 3u);  // n is baked: one lowered variant per n
  EXPECT_EQ(c.lowered.evictions, 2u);
  EXPECT_EQ(c.traced.entries, 1u);  // one definition, dtype and Config
  // The most recent plan is still there; the oldest was dropped and is made again.
  uint64_t misses = c.plans.misses;
  run_and_check(ctx, cpu, k, ScalarType::f32, {{"n", 68u}});
  EXPECT_EQ(ctx.counts().plans.misses, misses);
  run_and_check(ctx, cpu, k, ScalarType::f32, {{"n", 64u}});
  EXPECT_EQ(ctx.counts().plans.misses, misses + 1);
  ctx.clear();
  EXPECT_EQ(ctx.counts().plans.entries, 0u);
}

// Launches from many host threads on one context, with lowering (and on CUDA, NVRTC compiles)
// in flight: every result right, and each variant lowered exactly once. Runs on every backend
// this machine has.
class ContextThreads : public ::testing::TestWithParam<std::string> {};

TEST_P(ContextThreads, LaunchesFromEightThreadsShareOneContext) {
  Context ctx;
  Backend* backend = nullptr;
  try {
    backend = &ctx.backend(GetParam());
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  Backend& dev = *backend;
  Kernel add = find_kernel("vector_add"), two = twin<2>(), three = twin<3>();
  const std::vector<uint32_t> sizes = {33, 64, 100, 257, 1000, 4099};
  std::atomic<int> wrong{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int it = 0; it < 12; ++it) {
          uint32_t n = sizes[(t + it) % sizes.size()];
          std::vector<float> x(n), y(n), z(n, -1.0f);
          for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 17) - 8.0f + t, y[i] = 0.5f * i;
          Buffer bx = dev.alloc(ScalarType::f32, n), by = dev.alloc(ScalarType::f32, n),
                 bz = dev.alloc(ScalarType::f32, n);
          dev.upload(bx, x.data());
          dev.upload(by, y.data());
          const Kernel& k = it % 3 == 0 ? add : it % 3 == 1 ? two : three;
          float factor = it % 3 == 1 ? 2.0f : 3.0f;
          if (it % 3 == 0)
            ctx.launch(dev, k, ScalarType::f32, {{"n", n}}, {&bx, &by, &bz, nullptr});
          else
            ctx.launch(dev, k, ScalarType::f32, {{"n", n}}, {&bx, &bz, nullptr});
          dev.download(bz, z.data());
          for (uint32_t i = 0; i < n; ++i) wrong += z[i] != (it % 3 == 0 ? x[i] + y[i] : factor * x[i]);
          for (Buffer* b : {&bx, &by, &bz}) dev.release(*b);
        }
      } catch (const std::exception& e) {
        ++errors;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  Context::Counts c = ctx.counts();
  EXPECT_EQ(c.traced.misses, 3u);                  // three definitions
  EXPECT_EQ(c.lowered.misses, 3u * sizes.size());  // n is baked into each
  EXPECT_EQ(c.compiled.misses, 3u * sizes.size());
  EXPECT_EQ(c.plans.misses, 3u * sizes.size());
  EXPECT_EQ(c.plans.hits + c.plans.misses, 8u * 12u);
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, ContextThreads, ::testing::Values("cpu", "cuda"));

// The norms hold rows of up to 4096 elements in registers and take the strided body (chunks 0,
// its cache hints) for longer ones; both agree with the float64 reference.
TEST(Context, NormRuleHoldsRowsUpTo4096AndStridesLongerOnes) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  for (const char* name : {"rms_norm", "rms_norm_residual", "add_rms_norm"}) {
    Kernel k = find_kernel(name);
    for (uint32_t n : {4096u, 4104u, 5000u}) {
      CheckResult r = run_and_check(ctx, cpu, k, ScalarType::bf16, Shape{{"rows", 3}, {"n", n}}, CheckOptions{});
      EXPECT_TRUE(r.passed) << name << " n=" << n << ": " << r.summary();
      EXPECT_EQ(r.config.at("chunks"), n <= 4096 ? 1u : 0u) << name << " n=" << n;
      EXPECT_EQ(r.config.at("hold"), n <= 4096 ? 1u : 0u) << name << " n=" << n;
    }
  }
}

// Held rows that do not all fit an H100 at once with n / 8 threads take half or a quarter of them
// where that makes one wave (post-norm, 40 registers a thread at one chunk), and the
// rows two chunks a thread where they fill the device; chunks but the last
// that every thread reads whole are read without a branch (`whole`), an override asking for more
// is refused, and the norms agree with the float64 reference with any count of them.
TEST(Context, NormRuleFitsHeldRowsInOneWave) {
  const Target h100 = Target::cuda("sm_90a");
  auto config = [&](const char* name, uint32_t rows, uint32_t n, const Target& t) {
    return resolve(find_kernel(name).spec(), Shape{{"rows", rows}, {"n", n}}, t, {}, {}, ScalarType::bf16).config;
  };
  Config post = config("rms_norm_residual", 2048, 1000, h100);  // 128 threads: 12 rows an SM, 1584 < 2048
  EXPECT_EQ(post.at("threads"), 64u);
  EXPECT_EQ(post.at("chunks"), 2u);
  EXPECT_EQ(post.at("whole"), 1u);  // 1000 / (64 * 8); the second chunk is the row's tail
  EXPECT_EQ(config("rms_norm_residual", 16, 4096, h100).at("whole"), 0u);  // one chunk: behind its branch
  // The pre-norms of fewer rows than SMs read every chunk that is whole without a branch.
  for (const char* name : {"add_rms_norm", "gemma_add_rms_norm", "add_rms_norm_unrounded"}) {
    EXPECT_EQ(config(name, 16, 4096, h100).at("whole"), 1u) << name;
    EXPECT_EQ(config(name, 16, 1000, h100).at("whole"), 0u) << name;   // its one chunk passes n
    EXPECT_EQ(config(name, 132, 4096, h100).at("whole"), 1u) << name;  // two chunks: the last behind its branch
  }
  EXPECT_EQ(config("rms_norm_residual", 512, 1000, h100).at("threads"), 128u);  // fits at once
  EXPECT_EQ(config("rms_norm", 2048, 1000, h100).at("threads"), 128u);          // 32 registers: 16 an SM
  EXPECT_EQ(config("rms_norm_residual", 512, 4096, h100).at("threads"), 256u);  // 3 an SM at 512
  // Two chunks a thread where rows fill the device and n / 16 threads make whole groups of 4 warps,
  // the residual and w held with them.
  for (const char* name : {"rms_norm", "rms_norm_residual", "add_rms_norm"}) {
    Config two = config(name, 16384, 4096, h100);
    EXPECT_EQ(two.at("threads"), 256u) << name;
    EXPECT_EQ(two.at("chunks"), 2u) << name;
    EXPECT_EQ(two.at("whole"), 1u) << name;
    EXPECT_EQ(two.at("hold"), 1u) << name;
  }
  EXPECT_EQ(config("gemma_rms_norm", 4096, 2048, h100).at("threads"), 128u);
  EXPECT_EQ(config("add_rms_norm", 4096, 2048, h100).at("threads"), 128u);
  EXPECT_EQ(config("rms_norm", 4096, 3072, h100).at("threads"), 384u);  // 192 threads: slower
  EXPECT_EQ(config("rms_norm", 64, 4096, h100).at("threads"), 512u);    // fewer rows than SMs
  EXPECT_EQ(config("rms_norm_residual", 64, 4096, h100).at("chunks"), 1u);
  EXPECT_EQ(config("rms_norm_residual", 4096, 3072, h100).at("threads"), 384u);  // 192 threads: slower
  Target unknown = h100;
  unknown.registers_per_multiprocessor = 0;  // no register file to count: threads for a row's elements
  EXPECT_EQ(config("rms_norm_residual", 2048, 1000, unknown).at("threads"), 128u);
  EXPECT_EQ(config("rms_norm", 16384, 4096, unknown).at("threads"), 512u);

  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  for (const char* name : {"rms_norm", "rms_norm_residual", "add_rms_norm"}) {
    for (uint32_t n : {1000u, 1024u, 1003u, 700u}) {
      CheckOptions opts;
      opts.launch.config = {{"threads", 32}, {"chunks", 4}};  // whole: 3, 3, 3, 2
      CheckResult r = run_and_check(ctx, cpu, find_kernel(name), ScalarType::bf16, Shape{{"rows", 5}, {"n", n}}, opts);
      EXPECT_TRUE(r.passed) << name << " n=" << n << ": " << r.summary();
      // The pre-norm of fewer rows than the engine's cores (its sm_count) reads every whole chunk so.
      bool every = std::string(name) == "add_rms_norm" && 5 < cpu.target().multiprocessors;
      EXPECT_EQ(r.config.at("whole"), std::min(n / 256, every ? 4u : 3u)) << name << " n=" << n;
    }
    // The H100's two-chunk Config of rows that fill it, on a few rows of the same length.
    for (uint32_t n : {2048u, 4096u}) {
      CheckOptions opts;
      opts.launch.config = config(name, 16384, n, h100);
      CheckResult r = run_and_check(ctx, cpu, find_kernel(name), ScalarType::bf16, Shape{{"rows", 3}, {"n", n}}, opts);
      EXPECT_TRUE(r.passed) << name << " n=" << n << ": " << r.summary();
      EXPECT_EQ(r.config.at("chunks"), 2u) << name << " n=" << n;
    }
  }
  // Every chunk whole where each thread's chunks are in the row (a --config override), not past it.
  CheckOptions opts;
  opts.launch.config = {{"threads", 64}, {"chunks", 2}, {"whole", 2}};
  for (const char* name : {"rms_norm_residual", "add_rms_norm"}) {
    CheckResult all =
        run_and_check(ctx, cpu, find_kernel(name), ScalarType::bf16, Shape{{"rows", 3}, {"n", 1024}}, opts);
    EXPECT_TRUE(all.passed) << name << ": " << all.summary();
  }
  std::string why = mtile::testing::error_of([&] {
    run_and_check(ctx, cpu, find_kernel("rms_norm_residual"), ScalarType::bf16, Shape{{"rows", 3}, {"n", 1000}}, opts);
  });
  EXPECT_TRUE(contains(why, "whole * tpg * 8 <= n")) << why;
}

// The pre-norms store the sums of the chunks read without a branch after every chunk's loads: a
// store between two chunks' loads would hold the second's until the first's arrive (ptxas keeps
// loads below earlier stores), one chunk in flight at a time.
TEST(Context, PreNormStoresItsSumsAfterEveryChunksLoads) {
  const Kernel& k = find_kernel("add_rms_norm");
  const Target h100 = Target::cuda("sm_90a");
  Resolved r = resolve(k.spec(), {{"rows", 8}, {"n", 2048}}, h100,
                       {{"threads", 64}, {"chunks", 4}, {"hold", 0}, {"whole", 3}}, {}, ScalarType::bf16);
  passes::PipelineOptions o;
  o.bake = r.constexprs;
  o.tpg = r.geometry.tpg;
  std::string src = codegen::emit_cuda(passes::run_pipeline(k->def.trace(ScalarType::bf16, r.config), h100, o));
  const std::string load = "reinterpret_cast<const uint4*>(residual + ",
                    store = "*reinterpret_cast<uint4*>(residual + ";
  std::vector<size_t> loads;
  for (size_t at = src.find(load); at != std::string::npos; at = src.find(load, at + 1)) loads.push_back(at);
  ASSERT_EQ(loads.size(), 4u) << src;  // three whole chunks and the branch's whole form
  size_t first_store = src.find(store);
  ASSERT_NE(first_store, std::string::npos) << src;
  EXPECT_GT(first_store, loads[2]) << src;  // after the third whole chunk's loads
}

// The plain norms hold rows of 5120 to 16384 elements too on a device whose register file is
// known, where the rows make at least 4 waves of held rows: about four chunks a thread, the threads
// whole pairs of simdgroups, the weights after the reduction. Fewer rows, shorter or longer rows
// and the other forms keep the strided body. The H100's choices agree with the float64 reference
// on the CPU engine.
TEST(Context, NormRuleHoldsThePlainNormsLongRowsWhereTheyMakeWaves) {
  const Target h100 = Target::cuda("sm_90a");
  auto config = [&](const char* name, uint32_t rows, uint32_t n) {
    return resolve(find_kernel(name).spec(), Shape{{"rows", rows}, {"n", n}}, h100, {}, {}, ScalarType::bf16).config;
  };
  struct Case {
    uint32_t rows, n, threads, chunks, whole;
  };
  for (const Case& c : std::vector<Case>{{4096, 7168, 256, 4, 3},
                                         {4096, 8192, 256, 4, 3},
                                         {4096, 5120, 192, 4, 3},
                                         {4096, 6000, 192, 4, 3},
                                         {4096, 10000, 320, 4, 3},
                                         {2048, 16384, 512, 4, 3},
                                         {2640, 8192, 256, 4, 3}})
    for (const char* name : {"rms_norm", "gemma_rms_norm"}) {
      Config got = config(name, c.rows, c.n);
      EXPECT_EQ(got.at("threads"), c.threads) << name << " " << c.rows << " x " << c.n;
      EXPECT_EQ(got.at("chunks"), c.chunks) << name << " " << c.rows << " x " << c.n;
      EXPECT_EQ(got.at("whole"), c.whole) << name << " " << c.rows << " x " << c.n;
      EXPECT_EQ(got.at("hold"), 0u) << name << " " << c.rows << " x " << c.n;
    }
  // 256 threads of 48 registers: 5 rows an SM, 660 a wave on 132 SMs.
  EXPECT_EQ(config("rms_norm", 2639, 8192).at("chunks"), 0u);
  EXPECT_EQ(config("rms_norm", 1056, 8192).at("chunks"), 0u);
  EXPECT_EQ(config("rms_norm", 4096, 4104).at("chunks"), 0u);   // before 5120: 3 chunks a thread
  EXPECT_EQ(config("rms_norm", 4096, 16392).at("chunks"), 0u);  // past 16384
  EXPECT_EQ(config("rms_norm_residual", 4096, 8192).at("chunks"), 0u);
  EXPECT_EQ(config("add_rms_norm", 4096, 8192).at("chunks"), 0u);
  Target unknown = h100;
  unknown.registers_per_multiprocessor = 0;
  EXPECT_EQ(
      resolve(find_kernel("rms_norm").spec(), Shape{{"rows", 4096}, {"n", 8192}}, unknown, {}, {}, ScalarType::bf16)
          .config.at("chunks"),
      0u);

  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  for (const Case& c : std::vector<Case>{{5, 7168, 256, 4, 3}, {3, 6000, 192, 4, 3}, {4, 10000, 320, 4, 3}})
    for (const char* name : {"rms_norm", "gemma_rms_norm"}) {
      CheckOptions opts;
      opts.launch.config = {{"threads", c.threads}, {"chunks", c.chunks}, {"hold", 0}};
      CheckResult r =
          run_and_check(ctx, cpu, find_kernel(name), ScalarType::bf16, Shape{{"rows", c.rows}, {"n", c.n}}, opts);
      EXPECT_TRUE(r.passed) << name << " n=" << c.n << ": " << r.summary();
      EXPECT_EQ(r.config.at("whole"), c.whole) << name << " n=" << c.n;
    }
}

TEST(Context, ConfigOverridesAreCheckedLikeTheRulesChoice) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("rms_norm_residual");
  Shape s{{"rows", 3}, {"n", 1000}};
  CheckOptions opts;
  CheckResult chosen = run_and_check(ctx, cpu, k, ScalarType::f32, s, opts);
  EXPECT_EQ(chosen.config.at("threads"), 128u);  // one chunk of 8 a thread: 125 -> 128
  EXPECT_EQ(chosen.config.at("chunks"), 1u);     // the row is held in registers
  opts.launch.config = {{"threads", 256}};
  CheckResult wider = run_and_check(ctx, cpu, k, ScalarType::f32, s, opts);
  EXPECT_TRUE(wider.passed) << wider.summary();
  EXPECT_EQ(wider.geometry.tpg, 256u);
  opts.launch.config = {{"threads", 100}};
  try {
    run_and_check(ctx, cpu, k, ScalarType::f32, s, opts);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "tpg % simd_width == 0")) << e.what();
    EXPECT_TRUE(contains(e.what(), "tpg = 100")) << e.what();
  }
  opts.launch.config = {{"warps", 4}};
  try {
    run_and_check(ctx, cpu, k, ScalarType::f32, s, opts);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(
        e.what(), "config 'warps' is not one of its meta-parameters (it has: threads, chunks, hold, resident, whole)"))
        << e.what();
  }
}

TEST(Context, TheContractIncludesTheTargetsLimits) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("vector_add");
  LaunchOptions opts;
  opts.geometry = Geometry{{4, 70000, 1}, 2048};
  try {
    ctx.plan(cpu, k, ScalarType::f32, {{"n", 1000}}, opts);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::User);
    EXPECT_TRUE(contains(e.what(), "tpg <= max_tpg (tpg = 2048, max_tpg = 1024)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "grid_y <= max_grid_y (grid_y = 70000, max_grid_y = 65535)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "grid_y == 1 (grid_y = 70000)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "Nothing was launched")) << e.what();
  }
  EXPECT_EQ(ctx.counts().compiled.misses, 0u) << "nothing may be compiled for a broken contract";
}

TEST(Context, LaunchesOnMemoryTheCallerOwns) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("vector_add");
  const uint32_t n = 1000;
  std::vector<float> a(n), b(n), c(n, 0.0f);
  for (uint32_t i = 0; i < n; ++i) a[i] = 0.25f * i, b[i] = 1.0f - i;
  Buffer ba = cpu.wrap(reinterpret_cast<uint64_t>(a.data()), ScalarType::f32, n);
  Buffer bb = cpu.wrap(reinterpret_cast<uint64_t>(b.data()), ScalarType::f32, n);
  Buffer bc = cpu.wrap(reinterpret_cast<uint64_t>(c.data()), ScalarType::f32, n);
  EXPECT_TRUE(bc.borrowed());
  Stream s = cpu.default_stream();
  LaunchOptions opts;
  opts.stream = &s;
  ctx.launch(cpu, k, ScalarType::f32, {{"n", n}}, {&ba, &bb, &bc, nullptr}, opts);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << i;
  cpu.release(bc);  // forgets it; the memory stays the caller's
  EXPECT_EQ(c[5], a[5] + b[5]);
  EXPECT_THROW(cpu.wrap_stream(0x1234), Error);
}

TEST(Context, ReleasedAndForeignBuffersAreClearErrors) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  auto other = make_backend("cpu");
  Kernel k = find_kernel("vector_add");
  const uint32_t n = 64;
  Buffer a = cpu.alloc(ScalarType::f32, n), b = cpu.alloc(ScalarType::f32, n), c = cpu.alloc(ScalarType::f32, n);
  Buffer stale = b;  // a copy kept across the release
  cpu.release(b);
  auto error = [&](std::vector<Buffer*> args) {
    try {
      ctx.launch(cpu, k, ScalarType::f32, {{"n", n}}, args);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string msg = error({&a, &stale, &c, nullptr});
  EXPECT_TRUE(contains(msg, "kernel vector_add: buffer for 'b'")) << msg;
  EXPECT_TRUE(contains(msg, "was released")) << msg;
  msg = error({&a, &b, &c, nullptr});  // the released handle itself
  EXPECT_TRUE(contains(msg, "belongs to no backend")) << msg;
  Buffer foreign = other->alloc(ScalarType::f32, n);
  msg = error({&a, &foreign, &c, nullptr});
  EXPECT_TRUE(contains(msg, "belongs to another backend")) << msg;
  EXPECT_THROW(cpu.release(stale), Error);  // released twice
  other->release(foreign);
  cpu.release(a);
  cpu.release(c);
}

TEST(Context, AllocatingMoreThanTheHostHasIsADeviceError) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  try {
    cpu.alloc(ScalarType::f32, uint64_t{1} << 45);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Device);
    EXPECT_TRUE(contains(e.what(), "can't allocate")) << e.what();
  }
}

}  // namespace
}  // namespace mtile
