// The device-scope fence (docs/IR.md, "fence"): its text, its verifier rule, that one thread may
// run it alone, that no pass moves a memory access across it, its CUDA and Metal spellings, and
// the pattern it exists for (partials handed to the last threadgroup through a ticket) on the CPU
// engine.
#include <algorithm>
#include <numeric>

#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

int count(const ir::Function& f, ir::Op op) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += in.op == op; });
  return n;
}

// Sums of 32-element blocks: each threadgroup (one simdgroup) adds its block, lane 0 stores the
// partial, fences and takes a ticket; the last threadgroup adds the partials into total[0] and
// sets the counter back to 0. Values are small integers, so every sum is exact in f32.
void block_sums(In<f32> x, InOut<f32> partial, InOut<u32> counter, Out<f32> total) {
  Val s = simd_sum(load(x[program_id(0) * 32u + tid()]));
  TgArray ticket = threadgroup_array<u32>(1);
  if_(tid() == 0u, [&] {
    store(partial[program_id(0)], s);
    fence();
    store(ticket[0u], atomic_add(counter[0u], lit(1u)));
    fence();
  });
  barrier();
  if_(load(ticket[0u]) + 1u == grid_size(0) && tid() == 0u, [&] {
    Var sum(lit(0.0f));
    for_(0u, grid_size(0), 1u, [&](Val g) { sum += load(partial[g]); });
    store(total[0u], sum.get());
    atomic_exchange(counter[0u], lit(0u));
  });
}
KernelDef block_sums_def() {
  return define_kernel("block_sums", ir::Mode::Reduction, {"x", "partial", "counter", "total"}, &block_sums);
}

// A load, a fence, the same load: both stay, where without the fence the second is the first.
template <bool kFence>
void reload(InOut<f32> x, Out<f32> y) {
  Val a = load(x[tid()]);
  if (kFence) fence();
  Val b = load(x[tid()]);
  store(y[tid()], a + b);
}

// Four consecutive loads, two on each side of a fence: no 4-wide group spans it.
void split_group(In<f32> x, Out<f32> y) {
  Val i = tid() * 4u;
  Val a = load(x[i]), b = load(x[i + 1u]);
  fence();
  Val c = load(x[i + 2u]), d = load(x[i + 3u]);
  store(y[tid()], a + b + c + d);
}

TEST(Fence, PrintsAndOneThreadMayRunIt) {
  ir::Function f = block_sums_def().trace(ScalarType::f32);  // fences under tid() == 0: no uniformity error
  EXPECT_EQ(count(f, ir::Op::Fence), 2);
  EXPECT_TRUE(contains(ir::print(f), "\n    fence\n")) << ir::print(f);
  ir::verify(f);
}

TEST(Fence, TheVerifierTakesNoOperandsNorThreadgroupScope) {
  ir::Function f = block_sums_def().trace(ScalarType::f32);
  auto first_fence = [](ir::Function& g) -> ir::Inst& {
    ir::Inst* found = nullptr;
    ir::for_each_inst(g.body, [&](ir::Inst& in) {
      if (in.op == ir::Op::Fence && !found) found = &in;
    });
    return *found;
  };
  auto error = [](const ir::Function& g) {
    try {
      ir::verify(g);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("verified");
  };
  ir::Function tg = f;
  first_fence(tg).space = ir::MemSpace::Threadgroup;
  EXPECT_TRUE(contains(error(tg), "a fence orders device memory only")) << error(tg);
  ir::Function operand = f;
  first_fence(operand).args = {0};
  EXPECT_NE(error(operand), "verified");
}

TEST(Fence, NoPassMovesALoadAcrossIt) {
  auto loads = [](auto fn) {
    KernelDef def = define_kernel("reload", ir::Mode::Reduction, {"x", "y"}, fn);
    return count(passes::run_pipeline(def.trace(ScalarType::f32), Target::cuda("sm_90a")), ir::Op::Load);
  };
  EXPECT_EQ(loads(&reload<false>), 1);  // merged by eliminate_common_subexpressions
  EXPECT_EQ(loads(&reload<true>), 2);
  KernelDef def = define_kernel("split_group", ir::Mode::Reduction, {"x", "y"}, &split_group);
  ir::Function g = passes::run_pipeline(def.trace(ScalarType::f32), Target::cuda("sm_90a"));
  int widest = 0;
  ir::for_each_inst(g.body, [&](const ir::Inst& in) {
    if (in.op == ir::Op::LoadVector) widest = std::max<int>(widest, in.lanes);
  });
  EXPECT_EQ(widest, 2) << ir::print(g);  // x[i], x[i + 1] and x[i + 2], x[i + 3]: two groups
}

TEST(Fence, CudaAndMetalSpellings) {
  ir::Function cuda = passes::run_pipeline(block_sums_def().trace(ScalarType::f32), Target::cuda("sm_90a"));
  std::string src = codegen::emit_cuda(cuda);
  EXPECT_TRUE(contains(src, "__threadfence();")) << src;
  ir::Function metal = passes::run_pipeline(block_sums_def().trace(ScalarType::f32), Target::metal("apple9"));
  EXPECT_EQ(codegen::msl_version_needed(metal), codegen::MslOptions::Version::V3_2);
  std::string msl = codegen::emit_msl(metal, {.version = codegen::MslOptions::Version::V3_2});
  EXPECT_TRUE(contains(msl, "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"))
      << msl;
  // What the kernel writes is coherent across threadgroups; what it only reads needs not be.
  EXPECT_TRUE(contains(msl, "coherent(device) device float* partial")) << msl;
  EXPECT_TRUE(contains(msl, "coherent(device) device uint* counter")) << msl;
  EXPECT_TRUE(contains(msl, "device const float* x")) << msl;
  EXPECT_FALSE(contains(msl, "coherent(device) device const")) << msl;
  EXPECT_TRUE(contains(msl, "Metal Shading Language 3.2")) << msl;
  for (auto v : {codegen::MslOptions::Version::V3_0, codegen::MslOptions::Version::V3_1}) {
    std::string why;
    try {
      codegen::emit_msl(metal, {.version = v});
    } catch (const Error& e) {
      why = e.what();
    }
    EXPECT_TRUE(contains(why, "kernel block_sums<f32>: its device-scope fence needs Metal 3.2")) << why;
  }
  // A kernel without a fence needs nothing newer than 3.0, and 3.2 declares nothing coherent.
  KernelDef plain = define_kernel("reload", ir::Mode::Reduction, {"x", "y"}, &reload<false>);
  ir::Function p = passes::run_pipeline(plain.trace(ScalarType::f32), Target::metal("apple9"));
  EXPECT_EQ(codegen::msl_version_needed(p), codegen::MslOptions::Version::V3_0);
  EXPECT_FALSE(contains(codegen::emit_msl(p, {.version = codegen::MslOptions::Version::V3_2}), "coherent"));
}

TEST(Fence, TheLastThreadgroupSeesEveryPartialAndTheCounterEndsAtZero) {
  ir::Function f = passes::run_pipeline(block_sums_def().trace(ScalarType::f32), Target::cpu());
  for (uint32_t groups : {1u, 2u, 7u, 64u}) {
    std::vector<float> x(groups * 32);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13);
    std::vector<float> partial(groups, NAN), total(1, NAN);
    std::vector<uint32_t> counter(1, 0);
    std::vector<cpu::TensorView> views = {{x.data(), ScalarType::f32, x.size()},
                                          {partial.data(), ScalarType::f32, partial.size()},
                                          {counter.data(), ScalarType::u32, counter.size()},
                                          {total.data(), ScalarType::f32, total.size()}};
    cpu::EngineOptions opts;
    opts.threads = 4;                             // threadgroups on several host threads, in any order
    for (int launch = 0; launch < 3; ++launch) {  // again on the same counter: it was left at 0
      total[0] = NAN;
      cpu::execute(f, mtile::testing::geometry(groups, 32), views, std::vector<uint64_t>(4, 0), opts);
      EXPECT_EQ(total[0], std::accumulate(x.begin(), x.end(), 0.0f)) << groups << " threadgroups";
      EXPECT_EQ(counter[0], 0u);
    }
  }
}

// The system-scope fence of collective kernels: "fence system" in the IR (a hash of its own),
// __threadfence_system() on CUDA, the device fence on Metal (one device, no peers), and a scope
// above 1 is refused.
void signal(InOut<u32> flag, InOut<f32> x) {
  store(x[tid()], lit(1.0f));
  fence_system();
  if_(tid() == 0u, [&] { atomic_exchange(flag[0u], lit(1u)); });
}

TEST(Fence, SystemScope) {
  KernelDef def = define_kernel("signal", ir::Mode::Reduction, {"flag", "x"}, &signal);
  ir::Function f = def.trace(ScalarType::f32);
  EXPECT_TRUE(contains(ir::print(f), "\n  fence system\n")) << ir::print(f);
  ir::Function device = f;
  ir::for_each_inst(device.body, [](ir::Inst& in) {
    if (in.op == ir::Op::Fence) in.bits = 0;
  });
  EXPECT_NE(ir::structural_hash(f), ir::structural_hash(device));
  std::string src = codegen::emit_cuda(passes::run_pipeline(f, Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(src, "__threadfence_system();")) << src;
  ir::Function metal = passes::run_pipeline(f, Target::metal("apple9"));
  std::string msl = codegen::emit_msl(metal, {.version = codegen::MslOptions::Version::V3_2});
  EXPECT_TRUE(contains(msl, "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device);"))
      << msl;
  ir::Function bad = f;
  ir::for_each_inst(bad.body, [](ir::Inst& in) {
    if (in.op == ir::Op::Fence) in.bits = 2;
  });
  std::string why;
  try {
    ir::verify(bad);
  } catch (const Error& e) {
    why = e.what();
  }
  EXPECT_TRUE(contains(why, "fence scope 2")) << why;
}

}  // namespace
