// The CPU engine's sanitizer and loop budget (docs/reliability.md): one small kernel per fault,
// each with exactly that fault, and the error must name the kernel, the fault, the tensor or
// threadgroup array, the index, the thread and the threadgroup. Correct kernels with barriers
// pass under it (no false positive).
#include "mtile/harness.hpp"
#include "mtile/spec.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// Thread t writes a[t], then reads a[t + 1]: a barrier between the two makes it correct.
template <bool with_barrier>
void neighbour_exchange(Out<f32> y) {
  TgArray a = threadgroup_array<f32>(32);
  store(a[tid()], tid().cast<f32>());
  if constexpr (with_barrier) barrier();
  store(y[program_id(0) * lsize() + tid()], load(a[(tid() + 1u) % lsize()]));
}

// Thread t reads a[t + 1], then writes a[t] with no barrier between: thread 31 read a[0] first.
void write_after_read(Out<f32> y) {
  TgArray a = threadgroup_array<f32>(32);
  store(a[tid()], lit(1.0f));
  barrier();
  Val v = load(a[(tid() + 1u) % lsize()]);
  store(a[tid()], v + 1.0f);
  barrier();
  store(y[program_id(0) * lsize() + tid()], load(a[tid()]));
}

// Threads t and t + 16 both write a[t % 16] with no barrier between.
void write_after_write(Out<f32> y) {
  TgArray a = threadgroup_array<f32>(16);
  store(a[tid() % 16u], tid().cast<f32>());
  barrier();
  store(y[program_id(0) * lsize() + tid()], load(a[tid() % 16u]));
}

// An atomic add on threadgroup memory no thread initialised.
void atomic_on_unwritten(Out<u32> y) {
  TgArray a = threadgroup_array<u32>(32);
  Val old = atomic_add(a[tid()], lit(1u));
  store(y[program_id(0) * lsize() + tid()], old);
}

// Threads write a[0..31] of a 64-element array, then read a[32..63].
void reads_unwritten_shared(Out<f32> y) {
  TgArray a = threadgroup_array<f32>(64);
  store(a[tid()], lit(1.0f));
  barrier();
  store(y[program_id(0) * lsize() + tid()], load(a[tid() + 32u]));
}

// Reads its output before writing it (y += x on an Out tensor, which holds nothing yet).
void reads_output_first(In<f32> x, Out<f32> y) {
  Val i = program_id(0) * lsize() + tid();
  Val old = load(y[i]);
  store(y[i], load(x[i]) + old);
}

// Each thread reads x[i + 1]: the last thread of the last threadgroup reads one past the end.
void loads_past_the_end(In<f32> x, Out<f32> y) {
  Val i = program_id(0) * lsize() + tid();
  store(y[i], load(x[i + 1u]));
}

// Each thread writes y[i + 1]: the last thread of the last threadgroup writes one past the end.
void stores_past_the_end(In<f32> x, Out<f32> y) {
  Val i = program_id(0) * lsize() + tid();
  store(y[i + 1u], load(x[i]));
}

// A for_ whose step is 0 at run time (|x| < 1 cast to u32): it would never end.
void step_zero(In<f32> x, Out<f32> y) {
  Val i = program_id(0) * lsize() + tid();
  Val step = abs(load(x[i])).cast<u32>();
  Var acc(lit(0.0f));
  for_(lit(0u), lit(4u), step, [&](Val k) { acc = acc.get() + k.cast<f32>(); });
  store(y[i], acc.get());
}

// A while_ whose condition never changes: only the loop budget stops it.
void never_ends(Out<f32> y) {
  Var i(lit(0u));
  Val at = program_id(0) * lsize() + tid();
  while_([&] { return i.get() < 10u; }, [&] { store(y[at], i.get().cast<f32>()); });
}

// Async copies (docs/IR.md): thread t copies x[i] into a[t]. Read before its wait (Stage 0), read
// by another thread after the wait with no barrier (1), correct (2); two groups with a wait that
// leaves the second pending, then a read of each (3: the second is the fault).
template <int Stage>
void copies(In<f32> x, Out<f32> y) {
  TgArray a = threadgroup_array<f32>(32), b = threadgroup_array<f32>(32);
  Val i = program_id(0) * lsize() + tid();
  copy_async(a[tid()], x[i], 1);
  if constexpr (Stage == 3) {
    copy_async_commit();
    copy_async(b[tid()], x[i], 1);
    copy_async_commit();
    copy_async_wait(1);
    store(y[i], load(a[tid()]) + load(b[tid()]));
    return;
  }
  if constexpr (Stage > 0) {
    copy_async_commit();
    copy_async_wait(0);
  }
  if constexpr (Stage == 2) barrier();
  store(y[i], load(a[Stage == 0 ? tid() : (tid() + 1u) % lsize()]));
}

// A copy_async from an Out tensor nothing wrote yet.
void copies_unwritten_output(In<f32> x, Out<f32> y) {
  TgArray a = threadgroup_array<f32>(32);
  Val i = program_id(0) * lsize() + tid();
  copy_async(a[tid()], y[i], 1);
  copy_async_commit();
  copy_async_wait(0);
  store(y[i], load(a[tid()]) + load(x[i]));
}

// A kernel over `groups` threadgroups of 32 threads with tensors of n = groups * 32 elements; its
// reference copies x (or writes 0) where it has one: only what a fault stops matters.
template <class... P>
Kernel planted(const char* name, std::vector<std::string> params, void (*fn)(P...), uint32_t groups = 2) {
  using rule::var;
  KernelSpec k;
  k.def = define_kernel(name, ir::Mode::Reduction, params, fn);
  k.dims = {"n"};
  k.dispatch = {.grid = groups, .tpg = 32};
  for (const std::string& p : params) k.sizes[p] = var("n");
  k.reference = [](const Shape&, HostTensors& t) { t["y"].assign(t["y"].size(), 0.0); };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", groups * 32}}};
  return make_kernel(std::move(k));
}

// The error a kernel's checked launch throws on `backend`; fails the test when it runs cleanly.
std::string fault_of(const Kernel& k, Backend& backend) {
  try {
    CheckResult r = run_and_check(backend, k, ScalarType::f32, k->test_shapes[0]);
    ADD_FAILURE() << k.name() << " ran without a fault: " << r.summary();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string sanitized_fault(const Kernel& k) {
  auto cpu = make_backend("cpu:sanitize");
  return fault_of(k, *cpu);
}

// Every fault names the kernel, what went wrong and where.
void expect_named(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_TRUE(contains(msg, p)) << "missing '" << p << "' in: " << msg;
}

}  // namespace

TEST(Sanitizer, ReadAfterWriteWithNoBarrierIsARace) {
  std::string msg = sanitized_fault(planted("race_read", {"y"}, &neighbour_exchange<false>));
  expect_named(msg, {"kernel race_read<f32>", "race on threadgroup array", "f32[32], declared at sanitizer_test.cpp",
                     "at index 1: thread 1 wrote it and thread 0 reads it with no barrier between",
                     "threadgroup (0,0,0), thread 0", "at 'load'"});
}

TEST(Sanitizer, WriteAfterReadWithNoBarrierIsARace) {
  std::string msg = sanitized_fault(planted("race_write", {"y"}, &write_after_read));
  expect_named(msg, {"kernel race_write<f32>", "race on threadgroup array",
                     "at index 0: thread 31 reads it and thread 0 writes it with no barrier between",
                     "threadgroup (0,0,0), thread 0", "at 'store'"});
}

TEST(Sanitizer, TwoThreadsWritingOneElementWithNoBarrierIsARace) {
  std::string msg = sanitized_fault(planted("race_write_write", {"y"}, &write_after_write));
  expect_named(msg, {"kernel race_write_write<f32>", "race on threadgroup array", "f32[16]",
                     "at index 0: threads 0 and 16 both write it with no barrier between",
                     "threadgroup (0,0,0), thread 16", "at 'store'"});
}

TEST(Sanitizer, AtomicOnThreadgroupMemoryNoThreadWrote) {
  std::string msg = sanitized_fault(planted("atomic_unwritten", {"y"}, &atomic_on_unwritten));
  expect_named(msg, {"kernel atomic_unwritten<f32>", "atomic on threadgroup array", "u32[32]",
                     "at index 0, which no thread wrote", "threadgroup (0,0,0), thread 0", "at 'atomic"});
}

TEST(Sanitizer, TheSameExchangeWithItsBarrierPasses) {
  auto cpu = make_backend("cpu:sanitize");
  Kernel k = planted("exchange", {"y"}, &neighbour_exchange<true>);
  CheckOptions opts;
  opts.keep_outputs = true;
  CheckResult r = run_and_check(*cpu, k, ScalarType::f32, k->test_shapes[0], opts);
  ASSERT_EQ(r.output_values.size(), 1u);
  EXPECT_EQ(r.output_values[0][0], 1.0);   // thread 0 read what thread 1 wrote
  EXPECT_EQ(r.output_values[0][31], 0.0);  // thread 31 read thread 0's
  EXPECT_EQ(r.output_values[0][63], 0.0);  // and so in the second threadgroup
}

TEST(Sanitizer, AsyncCopiesAreAThreadgroupStoreThatCompletesAtTheWaitAndADeviceLoad) {
  std::string early = sanitized_fault(planted("copy_early", {"x", "y"}, &copies<0>));
  expect_named(early, {"kernel copy_early<f32>", "read of threadgroup array", "f32[32]",
                       "at index 0, which a copy_async of thread 0 is still writing",
                       "copy_async_commit and copy_async_wait for it", "threadgroup (0,0,0), thread 0", "at 'load'"});
  std::string race = sanitized_fault(planted("copy_race", {"x", "y"}, &copies<1>));
  expect_named(race, {"kernel copy_race<f32>", "race on threadgroup array",
                      "at index 1: thread 1 wrote it and thread 0 reads it with no barrier between", "at 'load'"});
  std::string pending = sanitized_fault(planted("copy_pending", {"x", "y"}, &copies<3>));
  expect_named(pending, {"kernel copy_pending<f32>", "read of threadgroup array",
                         "at index 0, which a copy_async of thread 0 is still writing"});
  EXPECT_TRUE(contains(pending, "f32[32], declared at sanitizer_test.cpp:")) << pending;
  std::string unwritten = sanitized_fault(planted("copy_unwritten", {"x", "y"}, &copies_unwritten_output));
  expect_named(unwritten, {"kernel copy_unwritten<f32>", "copy_async from 'y' at index 0 before anything wrote it",
                           "at 'copy_async'"});
  // With the wait and the barrier: thread t reads what thread t + 1 copied.
  auto cpu = make_backend("cpu:sanitize");
  Kernel k = planted("copy_ok", {"x", "y"}, &copies<2>);
  CheckOptions opts;
  opts.keep_outputs = true;
  std::string what;
  try {
    run_and_check(*cpu, k, ScalarType::f32, k->test_shapes[0], opts);
  } catch (const Error& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "");
}

TEST(Sanitizer, ReadOfThreadgroupMemoryNoThreadWrote) {
  std::string msg = sanitized_fault(planted("unwritten_shared", {"y"}, &reads_unwritten_shared));
  expect_named(msg, {"kernel unwritten_shared<f32>", "read of threadgroup array", "f32[64]",
                     "at index 32, which no thread wrote", "threadgroup (0,0,0), thread 0", "at 'load'"});
}

TEST(Sanitizer, ReadOfAnOutTensorBeforeItIsWritten) {
  std::string msg = sanitized_fault(planted("reads_output", {"x", "y"}, &reads_output_first));
  expect_named(msg, {"kernel reads_output<f32>", "read of 'y' at index 0 before anything wrote it",
                     "threadgroup (0,0,0), thread 0", "at 'load'"});
}

TEST(Sanitizer, OutOfBoundsLoadAndStore) {
  // Bounds are checked with the sanitizer off too.
  for (const char* backend : {"cpu", "cpu:sanitize"}) {
    auto cpu = make_backend(backend);
    std::string load = fault_of(planted("load_oob", {"x", "y"}, &loads_past_the_end), *cpu);
    expect_named(load, {"kernel load_oob<f32>", "load of 'x' at index 64 is out of bounds (64 elements)",
                        "threadgroup (1,0,0), thread 31"});
    std::string store = fault_of(planted("store_oob", {"x", "y"}, &stores_past_the_end), *cpu);
    expect_named(store, {"kernel store_oob<f32>", "store to 'y' at index 64 is out of bounds (64 elements)",
                         "threadgroup (1,0,0), thread 31"});
  }
}

TEST(Sanitizer, TheLoopBudgetStopsARunawayLoop) {
  Kernel k = planted("never_ends", {"y"}, &never_ends);
  CpuOptions budget;
  budget.loop_budget = 1000;
  auto cpu = make_cpu_backend(budget);
  std::string msg = fault_of(k, *cpu);
  expect_named(msg, {"kernel never_ends<f32>", "runaway loop: this threadgroup ran more than 1000 loop iterations",
                     "--loop-budget", "threadgroup (0,0,0), thread 0", "at 'loop'"});
  budget.loop_budget = 0;
  EXPECT_THROW(make_cpu_backend(budget), Error);
}

TEST(Sanitizer, AForLoopWithStepZeroIsStopped) {
  // Checked with the sanitizer off too: without it the loop would never end.
  for (const char* backend : {"cpu", "cpu:sanitize"}) {
    auto cpu = make_backend(backend);
    std::string msg = fault_of(planted("step_zero", {"x", "y"}, &step_zero), *cpu);
    expect_named(msg, {"kernel step_zero<f32>", "for_ loop with step 0 would never end",
                       "threadgroup (0,0,0), thread 0", "at 'for'"});
  }
}

TEST(Sanitizer, LibraryKernelsWithBarriersPass) {
  // Threadgroup reductions (barriers around shared partials), shuffles and a lane-0 broadcast.
  auto cpu = make_backend("cpu:sanitize");
  EXPECT_TRUE(contains(cpu->device_name(), "sanitizer on")) << cpu->device_name();
  for (const char* name : {"softmax", "rms_norm_residual", "mt_rms_norm_small", "mt_rms_inv_scalar", "add_rms_norm"}) {
    Kernel k = find_kernel(name);
    for (const Shape& s : k->test_shapes) {
      CheckResult r = run_and_check(*cpu, k, k->def.dtypes().back(), s);
      EXPECT_TRUE(r.passed) << r.summary();
    }
  }
}
