// Cache hints on device accesses (docs/IR.md, "Cache hints"): the DSL's keep()/stream(), their
// text, the verifier's rules, that vectorize_memory groups only accesses of one hint and keeps it,
// the CUDA spellings (and NVRTC compiling every width, on sm_90a and on sm_75, which has no
// policies), plain Metal, and that the CPU engine's results do not change.
#include "backends/cuda/nvrtc.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

int count_hinted(const ir::Function& f, ir::Op op, ir::CacheHint hint) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { n += in.op == op && ir::cache_hint(in) == hint; });
  return n;
}

// y[i] = 2 x[i] + z[i]: x kept, z streamed, y stored streamed; 8 consecutive elements a thread.
void hinted(In<f32> x, In<f32> z, Out<f32> y) {
  Val base = (program_id(0) * lsize() + tid()) * 8u;
  for (uint32_t k = 0; k < 8; ++k) {
    Val v = load(x[base + k].keep()) * 2.0f + load(z[base + k].stream());
    store(y[base + k].stream(), v);
  }
}
KernelDef hinted_def() {
  return define_kernel("hinted", ir::Mode::Elementwise, {"x", "z", "y"}, &hinted);
}

// Eight consecutive loads of x, the first four kept and the last four streamed: no 8-wide group.
void mixed(In<f32> x, Out<f32> y) {
  Val base = tid() * 8u;
  Var sum(lit(0.0f));
  for (uint32_t k = 0; k < 8; ++k) sum += load(k < 4 ? x[base + k].keep() : x[base + k].stream());
  store(y[tid()], sum.get());
}

// Every width a hinted access moves: u8 (widened to u32), bf16, f32, u64, and a 16-byte vector.
void widths(In<u8> a, Out<u8> b, In<bf16> c, Out<bf16> d, In<f32> e, Out<f32> f, In<u64> g, Out<u64> h) {
  Val i = tid();
  store(b[i].keep(), load(a[i].stream()));
  Val j = i * 8u;
  for (uint32_t k = 0; k < 8; ++k) store(d[j + k].stream(), load(c[j + k].keep()));
  store(f[i].stream(), load(e[i].keep(), i < 7u, lit(0.0f)));
  store(h[i].keep(), load(g[i].stream()), i < 9u);
}

TEST(CacheHint, TheDslRecordsItAndTheTextShowsIt) {
  ir::Function f = hinted_def().trace(ScalarType::f32);
  EXPECT_EQ(count_hinted(f, ir::Op::Load, ir::CacheHint::Keep), 8);
  EXPECT_EQ(count_hinted(f, ir::Op::Load, ir::CacheHint::Stream), 8);
  EXPECT_EQ(count_hinted(f, ir::Op::Store, ir::CacheHint::Stream), 8);
  std::string text = ir::print(f);
  EXPECT_TRUE(contains(text, "= load.keep x[")) << text;
  EXPECT_TRUE(contains(text, "= load.stream z[")) << text;
  EXPECT_TRUE(contains(text, "store.stream y[")) << text;
  // A hint is part of the kernel's identity (its hash names compiled modules).
  ir::Function plain = f;
  ir::for_each_inst(plain.body, [](ir::Inst& in) {
    if (in.op == ir::Op::Load) in.bits = 0;
  });
  EXPECT_NE(ir::structural_hash(f), ir::structural_hash(plain));
}

TEST(CacheHint, VectorsKeepTheHintAndGroupOnlyOneHint) {
  ir::Function f = passes::run_pipeline(hinted_def().trace(ScalarType::f32), Target::cuda("sm_90a"));
  EXPECT_EQ(count_hinted(f, ir::Op::LoadVector, ir::CacheHint::Keep), 2) << ir::print(f);  // 8 f32: two of 16 bytes
  EXPECT_EQ(count_hinted(f, ir::Op::LoadVector, ir::CacheHint::Stream), 2) << ir::print(f);
  EXPECT_EQ(count_hinted(f, ir::Op::StoreVector, ir::CacheHint::Stream), 2) << ir::print(f);
  KernelDef def = define_kernel("mixed", ir::Mode::Reduction, {"x", "y"}, &mixed);
  ir::Function g = passes::run_pipeline(def.trace(ScalarType::f32), Target::cuda("sm_90a"));
  EXPECT_EQ(count_hinted(g, ir::Op::LoadVector, ir::CacheHint::Keep), 1) << ir::print(g);
  EXPECT_EQ(count_hinted(g, ir::Op::LoadVector, ir::CacheHint::Stream), 1) << ir::print(g);
  ir::for_each_inst(g.body, [&](const ir::Inst& in) {
    if (in.op == ir::Op::LoadVector) {
      EXPECT_EQ(in.lanes, 4) << ir::print(g);
    }
  });
}

TEST(CacheHint, TheVerifierTakesThreeHintsOnDeviceMemoryOnly) {
  ir::Function f = hinted_def().trace(ScalarType::f32);
  auto error = [](const ir::Function& g) { return mtile::testing::error_of([&] { ir::verify(g); }); };
  EXPECT_EQ(error(f), "");
  auto first_load = [](ir::Function& g) -> ir::Inst& {
    ir::Inst* found = nullptr;
    ir::for_each_inst(g.body, [&](ir::Inst& in) {
      if (in.op == ir::Op::Load && !found) found = &in;
    });
    return *found;
  };
  ir::Function bad = f;
  first_load(bad).bits = 3;
  EXPECT_TRUE(contains(error(bad), "cache hint 3 (0 none, 1 keep, 2 stream)")) << error(bad);
}

TEST(CacheHint, ThreadgroupMemoryTakesNone) {
  auto kernel = [](In<f32> x, Out<f32> y) {
    TgArray t = threadgroup_array<f32>(32);
    store(t[tid()].keep(), load(x[tid()]));
    barrier();
    store(y[tid()], load(t[tid()]));
  };
  KernelDef def = define_kernel("tg_hint", ir::Mode::Reduction, {"x", "y"}, +kernel);
  std::string why = mtile::testing::error_of([&] { def.trace(ScalarType::f32); });
  EXPECT_TRUE(contains(why, "tg_hint")) << why;
  EXPECT_TRUE(contains(why, "the cache hint keep(): cache hints are for device memory")) << why;
  // The verifier refuses one that a pass or a hand-made function put there.
  KernelDef unhinted = define_kernel(
      "tg_plain", ir::Mode::Reduction, {"x", "y"}, +[](In<f32> x, Out<f32> y) {
        TgArray t = threadgroup_array<f32>(32);
        store(t[tid()], load(x[tid()]));
        barrier();
        store(y[tid()], load(t[tid()]));
      });
  ir::Function f = unhinted.trace(ScalarType::f32);
  ir::for_each_inst(f.body, [](ir::Inst& in) {
    if (in.op == ir::Op::Store && in.space == ir::MemSpace::Threadgroup) in.bits = 1;
  });
  why = mtile::testing::error_of([&] { ir::verify(f); });
  EXPECT_TRUE(contains(why, "cache hint keep on threadgroup memory")) << why;
}

TEST(CacheHint, CudaSpellsThemMetalPrintsPlainAccesses) {
  ir::Function f = passes::run_pipeline(hinted_def().trace(ScalarType::f32), Target::cuda("sm_90a"));
  std::string src = codegen::emit_cuda(f);
  EXPECT_TRUE(contains(src, "mt_load_keep(reinterpret_cast<const float4*>(x + ")) << src;
  EXPECT_TRUE(contains(src, "mt_load_stream(reinterpret_cast<const float4*>(z + ")) << src;
  EXPECT_TRUE(contains(src, "mt_store_stream(reinterpret_cast<float4*>(y + ")) << src;
  EXPECT_TRUE(contains(src, "createpolicy.fractional.L2::\" PRIORITY")) << "the prelude comes with the hints";
  // A kernel without hints has no such prelude.
  KernelDef plain = define_kernel(
      "mixed_plain", ir::Mode::Reduction, {"x", "y"}, +[](In<f32> x, Out<f32> y) { store(y[tid()], load(x[tid()])); });
  EXPECT_FALSE(contains(codegen::emit_cuda(passes::run_pipeline(plain.trace(ScalarType::f32), Target::cuda("sm_90a"))),
                        "MTILE_CUDA_CACHE_HINT"));
  ir::Function metal = passes::run_pipeline(hinted_def().trace(ScalarType::f32), Target::metal("apple9"));
  std::string msl = codegen::emit_msl(metal, {});
  EXPECT_FALSE(contains(msl, "mt_load_")) << msl;
  EXPECT_FALSE(contains(msl, "mt_store_")) << msl;
}

TEST(CacheHint, NvrtcCompilesEveryWidthWithAndWithoutPolicies) {
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  KernelDef def = define_kernel("widths", ir::Mode::Reduction, {"a", "b", "c", "d", "e", "f", "g", "h"}, &widths);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::f32), Target::cuda("sm_90a"));
  std::string src = codegen::emit_cuda(f);
  for (const char* access :
       {"mt_load_stream(reinterpret_cast<const unsigned char*>(a + ",
        "mt_store_keep(reinterpret_cast<unsigned char*>(b + ", "mt_load_keep(reinterpret_cast<const uint4*>(c + ",
        "mt_store_stream(reinterpret_cast<uint4*>(d + ", "mt_load_keep(reinterpret_cast<const float*>(e + ",
        "mt_load_stream(reinterpret_cast<const unsigned long long*>(g + ",
        "mt_store_keep(reinterpret_cast<unsigned long long*>(h + "})
    EXPECT_TRUE(contains(src, access)) << access << "\n" << src;
  for (const char* arch : {"sm_90a", "sm_75"}) {
    cuda::NvrtcResult r = cuda::nvrtc_compile(src, "widths.cu", arch);  // throws with the log
    EXPECT_GT(r.cubin.size(), 0u) << arch;
    EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
  }
}

TEST(CacheHint, TheCpuEngineReadsAndWritesTheSameValues) {
  ir::Function f = passes::run_pipeline(hinted_def().trace(ScalarType::f32), Target::cpu());
  const uint32_t groups = 3, tpg = 4, n = groups * tpg * 8;
  std::vector<float> x(n), z(n), y(n, NAN);
  for (uint32_t i = 0; i < n; ++i) {
    x[i] = 0.25f * static_cast<float>(i % 17) - 1.0f;
    z[i] = 0.5f * static_cast<float>(i % 5);
  }
  std::vector<cpu::TensorView> views = {
      {x.data(), ScalarType::f32, n}, {z.data(), ScalarType::f32, n}, {y.data(), ScalarType::f32, n}};
  cpu::execute(f, mtile::testing::geometry(groups, tpg), views, std::vector<uint64_t>(3, 0), {});
  for (uint32_t i = 0; i < n; ++i) EXPECT_EQ(y[i], 2.0f * x[i] + z[i]) << i;
}

}  // namespace
