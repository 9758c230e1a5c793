// Mbarriers (docs/IR.md, "Mbarriers"): a producer simdgroup hands buffers to a consumer one through
// `full` and `empty` barriers on the CPU engine (values against the float64 reference, every
// element written), the sanitizer's races where an ordering is missing, the engine's refusals, the
// verifier's, what CUDA prints and NVRTC compiles, and the refusals of sm_80 and Metal.
#include <fmt/format.h>

#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "mtile/dsl.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::error_of;
using mtile::testing::geometry;

namespace {

constexpr uint32_t kSteps = 5, kStages = 2;

// Simdgroup 1 copies x[32 step ..] into buffer step % 2 and arrives on full once its copies land;
// simdgroup 0 waits for it, reads its neighbour lane's element and writes y = 2 v + step, then
// releases the buffer on empty. Config `bad`: 1 the consumer does not wait, 2 the producer does not
// wait for the release, 3 the consumer runs before the producer in the loop, 4 no init, 5 no
// barrier after the init, 6 a plain arrive before the copies are waited for.
void handoff(In<f32> x, Out<f32> y) {
  const uint32_t bad = config("bad", 0);
  TgArray buf = threadgroup_array<f32>(kStages * 32);
  Mbarriers full = mbarriers(kStages), empty = mbarriers(kStages);
  if (bad != 4)
    if_(tid() == 0u, [&] {
      for (uint32_t s = 0; s < kStages; ++s) {
        full.init(s, 32);
        empty.init(s, 32);
      }
    });
  if (bad != 5) barrier();
  Val lane = simd_lane();
  for_(0u, lit(kSteps), 1u, [&](Val step) {
    Val s = step % kStages, round = step / kStages;
    auto produce = [&] {
      if_(simd_group() == 1u, [&] {
        if (bad != 2) empty.wait(s, (round & 1u) ^ 1u);
        copy_async(buf[s * 32u + lane], x[step * 32u + lane], 1);
        if (bad == 6)
          full.arrive(s);
        else
          full.arrive_after_copies(s);
      });
    };
    auto consume = [&] {
      if_(simd_group() == 0u, [&] {
        if (bad != 1) full.wait(s, round & 1u);
        Val v = load(buf[s * 32u + (lane + 1u) % 32u]);
        store(y[step * 32u + lane], 2.0f * v + step.cast(ScalarType::f32));
        empty.arrive(s);
      });
    };
    if (bad == 3) consume();
    produce();
    if (bad != 3) consume();
  });
}

const KernelDef& handoff_kernel() {
  static const KernelDef k = define_kernel("handoff", ir::Mode::Reduction, {"x", "y"}, &handoff);
  return k;
}

ir::Function handoff_ir(const Target& target, uint32_t bad = 0) {
  return passes::run_pipeline(handoff_kernel().trace(ScalarType::f32, Config{{"bad", bad}}), target);
}

struct Handoff {
  std::vector<float> x, y;
  std::string error;
};

Handoff run_handoff(uint32_t bad, bool sanitize = true) {
  Handoff h;
  std::mt19937 rng(bad + 11);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (uint32_t i = 0; i < kSteps * 32; ++i) h.x.push_back(u(rng));
  h.y.assign(h.x.size(), NAN);  // poisoned: every element must be written
  try {
    cpu::execute(handoff_ir(Target::cpu(), bad), geometry(1, 64),
                 {{h.x.data(), ScalarType::f32, h.x.size()}, {h.y.data(), ScalarType::f32, h.y.size(), true}}, {0, 0},
                 {.sanitize = sanitize});
  } catch (const Error& e) {
    h.error = e.what();
  }
  return h;
}

TEST(Mbarrier, AProducerHandsBuffersToAConsumerThroughFullAndEmpty) {
  for (bool sanitize : {true, false}) {
    Handoff h = run_handoff(0, sanitize);
    ASSERT_EQ(h.error, "");
    for (uint32_t step = 0; step < kSteps; ++step)
      for (uint32_t lane = 0; lane < 32; ++lane) {
        const double want = 2.0 * double{h.x[step * 32 + (lane + 1) % 32]} + step;
        ASSERT_EQ(h.y[step * 32 + lane], static_cast<float>(want)) << "step " << step << " lane " << lane;
      }
  }
}

TEST(Mbarrier, TheSanitizerReportsAccessesNoMbarrierOrders) {
  std::string no_wait = run_handoff(1).error;
  EXPECT_TRUE(contains(no_wait, "kernel handoff<f32>: race on threadgroup array")) << no_wait;
  EXPECT_TRUE(contains(no_wait, "wrote it and thread 0 reads it with no barrier between (nor an mbarrier")) << no_wait;
  std::string no_release = run_handoff(2).error;
  EXPECT_TRUE(contains(no_release, "reads it and thread 32 writes it with no barrier between (nor an mbarrier"))
      << no_release;
  std::string no_barrier = run_handoff(5).error;
  EXPECT_TRUE(contains(no_barrier, "race on threadgroup array")) << no_barrier;
  EXPECT_TRUE(contains(no_barrier, "at 'mbarrier_")) << no_barrier;
  std::string plain = run_handoff(6).error;
  EXPECT_TRUE(contains(plain, "which a copy_async of thread 33 is still writing")) << plain;
}

TEST(Mbarrier, TheEngineRefusesAWaitNoEarlierArrivalCompletesAndUninitializedBarriers) {
  for (bool sanitize : {true, false}) {
    std::string early = run_handoff(3, sanitize).error;
    EXPECT_TRUE(contains(early, "kernel handoff<f32>: mbarrier_wait on mbarrier 0 of threadgroup array")) << early;
    EXPECT_TRUE(contains(early,
                         "for the phase of parity 0, which has not completed (32 of 32 arrivals missing, 0 "
                         "phases completed)"))
        << early;
    EXPECT_TRUE(contains(early, "lockstep")) << early;
    std::string uninitialized = run_handoff(4, sanitize).error;
    EXPECT_TRUE(contains(uninitialized, "on mbarrier 0 of threadgroup array")) << uninitialized;
    EXPECT_TRUE(contains(uninitialized, "which no thread initialized")) << uninitialized;
  }
}

// An array of mbarriers read as data: the verifier refuses it.
void barrier_as_data(In<f32> x, Out<f32> y) {
  Mbarriers b = mbarriers(2);
  if_(tid() == 0u, [&] { b.init(0u, 1u); });
  barrier();
  store(y[tid()], load(x[tid()]) + load(b.array[0u]).cast(ScalarType::f32));
}

TEST(Mbarrier, TheVerifierKeepsOtherAccessesOutOfAnArrayOfMbarriers) {
  std::string error = error_of([] {
    passes::run_pipeline(
        define_kernel("barrier_as_data", ir::Mode::Reduction, {"x", "y"}, &barrier_as_data).trace(ScalarType::f32),
        Target::cpu());
  });
  EXPECT_TRUE(contains(error, "kernel barrier_as_data")) << error;
  EXPECT_TRUE(contains(error, "holds mbarriers (used by 'mbarrier_init'), which only mbarrier ops may touch")) << error;
}

TEST(Mbarrier, CudaPrintsMbarrierPtxThatNvrtcCompilesForSm90AndOtherTargetsRefuse) {
  ir::Function f = handoff_ir(Target::cuda("sm_90a"));
  std::string cuda = codegen::emit_cuda(f);
  for (const char* want : {"mbarrier.init.shared::cta.b64", "mbarrier.arrive.shared::cta.b64 _,",
                           "cp.async.mbarrier.arrive.noinc.shared::cta.b64", "mbarrier.try_wait.parity.shared::cta.b64",
                           "mt_mbarrier_arrive_after_copies(&", "unsigned long long tg1[2];"})
    EXPECT_TRUE(contains(cuda, want)) << want << "\n" << cuda;
  std::string arch = error_of([&] { cuda::compile_for_arch(f, "sm_80"); });
  EXPECT_TRUE(contains(arch, "kernel handoff<f32>: mbarriers (mbarrier.try_wait) need sm_90 or newer")) << arch;
  std::string msl = error_of([] { codegen::emit_msl(handoff_ir(Target::metal("apple9"))); });
  EXPECT_TRUE(contains(msl, "mbarriers (threadgroup barrier objects that count arrivals, CUDA sm_90) have no lowering"))
      << msl;
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  cuda::NvrtcResult r = cuda::compile_for_arch(f, "sm_90a");
  EXPECT_GT(r.cubin.size(), 0u);
  EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
}

}  // namespace
