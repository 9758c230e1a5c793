// widen_indices: which launches get 64-bit offsets, that every library kernel can take them and
// computes the same bits with them, the refusal of a u32 local in an index chain, and a read past
// 2^32 elements on sparse memory that 32-bit offsets would wrap.
#include <sys/mman.h>

#include <cstring>
#include <random>

#include "backends/cpu/engine.hpp"
#include "codegen/codegen.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// Tensor names whose accesses take a u64 offset, and those that take a u32 one.
std::pair<std::set<std::string>, std::set<std::string>> offset_widths(const ir::Function& f) {
  std::map<ir::Id, ScalarType> types;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if (in.result != ir::kNoId) types[in.result] = in.op == ir::Op::For ? ScalarType::u32 : in.type;
  });
  std::set<std::string> wide, narrow;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    bool access = in.op == ir::Op::Load || in.op == ir::Op::Store || in.op == ir::Op::LoadVector ||
                  in.op == ir::Op::StoreVector || in.op == ir::Op::Atomic;
    if (!access || in.space != ir::MemSpace::Device) return;
    (types.at(in.args[0]) == ScalarType::u64 ? wide : narrow).insert(f.params.at(in.param).name);
  });
  return {wide, narrow};
}

ir::Function lower(const Kernel& k, ScalarType t, const Shape& shape, std::set<std::string>* wide = nullptr) {
  Resolved r = resolve(k.spec(), shape, Target::cuda("sm_90a"));
  check_contract(k.spec(), shape, r);
  passes::PipelineOptions opts;
  opts.bake = r.constexprs;
  opts.wide = wide ? *wide : wide_tensors(r);
  return passes::run_pipeline(k->def.trace(t, r.config), Target::cuda("sm_90a"), opts);
}

}  // namespace

TEST(WidenIndices, OnlyTensorsPast2To31ElementsGet64BitOffsets) {
  Kernel k = find_kernel("rms_norm_residual");
  Shape big{{"rows", 600000}, {"n", 8192}};  // 4.9e9 elements in x, residual and out
  EXPECT_EQ(wide_tensors(resolve(k.spec(), big, Target::cuda("sm_90a"))),
            (std::set<std::string>{"out", "residual", "x"}));
  ir::Function f = lower(k, ScalarType::bf16, big);
  auto [wide, narrow] = offset_widths(f);
  EXPECT_EQ(wide, (std::set<std::string>{"out", "residual", "x"})) << ir::print(f);
  EXPECT_EQ(narrow, (std::set<std::string>{"eps_buf", "w"})) << ir::print(f);
  EXPECT_TRUE(contains(codegen::emit_cuda(f), "unsigned long long"));
  EXPECT_GT(ir::print(f).find("load_vector"), 0u) << "u64 offsets must still vectorise";

  Shape small{{"rows", 64}, {"n", 4096}};
  EXPECT_TRUE(wide_tensors(resolve(k.spec(), small, Target::cuda("sm_90a"))).empty());
  auto [wide_small, narrow_small] = offset_widths(lower(k, ScalarType::bf16, small));
  EXPECT_TRUE(wide_small.empty());
  EXPECT_EQ(narrow_small.size(), 5u);
}

// Every kernel of the library lowers with every tensor wide, and computes the same bits on the
// CPU engine as with 32-bit offsets at its example shape.
TEST(WidenIndices, EveryKernelGivesTheSameBitsWith64BitOffsets) {
  for (const Kernel& k : kernels()) {
    for (ScalarType t : k->def.dtypes()) {
      SCOPED_TRACE(k.name() + "<" + type_name(t) + ">");
      // A collective kernel as one rank (no peers to wait for; kernels_test simulates several).
      Shape shape = k->example_shape;
      if (!k->symmetric.empty()) shape["ranks"] = 1;
      Resolved r = resolve(k.spec(), shape, Target::cpu());
      std::set<std::string> all;
      for (const auto& [name, count] : r.elements) all.insert(name);
      passes::PipelineOptions opts;
      opts.bake = r.constexprs;
      ir::Function narrow = passes::run_pipeline(k->def.trace(t, r.config), Target::cpu(), opts);
      opts.wide = all;
      ir::Function wide = passes::run_pipeline(k->def.trace(t, r.config), Target::cpu(), opts);
      ASSERT_TRUE(offset_widths(wide).second.empty()) << ir::print(wide);
      std::mt19937 rng(11);
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      std::vector<std::vector<uint8_t>> data(narrow.params.size());
      std::vector<uint64_t> values(narrow.params.size(), 0);
      for (size_t i = 0; i < narrow.params.size(); ++i) {
        const ir::Param& p = narrow.params[i];
        if (p.kind == ir::ParamKind::Constexpr) values[i] = r.constexprs.at(p.name);
        if (p.kind == ir::ParamKind::Scalar && p.name != "rank") {  // a collective's rank stays 0
          float v = 1e-5f;
          std::memcpy(&values[i], &v, 4);
        }
        if (p.kind != ir::ParamKind::Tensor) continue;
        uint64_t count = r.elements.at(p.name);
        data[i].resize(count * storage_bytes(p.elem));
        for (uint64_t e = 0; e < count; ++e) {
          float v = dist(rng);
          if (p.name.find("eps") != std::string::npos) v = 1e-5f;
          uint64_t bits = 0;
          switch (p.elem) {
            case ScalarType::f32: std::memcpy(&bits, &v, 4); break;
            case ScalarType::f16: bits = f32_to_f16_bits(v); break;
            case ScalarType::bf16: bits = f32_to_bf16_bits(v); break;
            default: bits = rng() % 4;  // integers: small, valid as indices
          }
          std::memcpy(&data[i][e * storage_bytes(p.elem)], &bits, storage_bytes(p.elem));
        }
      }
      auto run = [&](const ir::Function& f) {
        std::vector<std::vector<uint8_t>> bufs = data;
        std::vector<cpu::TensorView> views(f.params.size());
        for (size_t i = 0; i < f.params.size(); ++i)
          if (f.params[i].kind == ir::ParamKind::Tensor)
            views[i] = {bufs[i].data(), f.params[i].elem, bufs[i].size() / storage_bytes(f.params[i].elem)};
        cpu::execute(f, r.geometry, views, values);
        return bufs;
      };
      auto a = run(narrow), b = run(wide);
      for (size_t i = 0; i < narrow.params.size(); ++i) {
        if (narrow.params[i].role == ir::Role::In) continue;
        EXPECT_EQ(a[i], b[i]) << narrow.params[i].name;
      }
    }
  }
}

namespace {
void through_local(In<f32> x, Out<f32> y, Constexpr n) {
  Var at("at", program_id(0) * n + tid());
  store(y[tid()], load(x[at.get()]));
}
}  // namespace

TEST(WidenIndices, RefusesAU32LocalInAnIndexChain) {
  ir::Function f = passes::inline_calls(
      define_kernel("through_local", ir::Mode::Elementwise, {"x", "y", "n"}, &through_local).trace(ScalarType::f32));
  try {
    passes::widen_indices(f, {"x"});
    FAIL() << "a u32 local in x's index was widened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "kernel through_local: tensor 'x' needs 64-bit offsets")) << e.what();
    EXPECT_TRUE(contains(e.what(), "u32 local variable")) << e.what();
    EXPECT_TRUE(contains(e.what(), "widen_indices_test.cpp")) << e.what();
  }
  EXPECT_NO_THROW(passes::widen_indices(f, {"y"}));  // y's index is tid(): no local
}

namespace {
void loop_over_offsets(In<f32> x, Out<f32> y, Constexpr n) {
  Val row = program_id(0);
  for_(row * n + tid(), row * n + n, lsize(), [&](Val i) { store(y[tid()], load(x[i])); });
}
void loop_within_row(In<f32> x, Out<f32> y, Constexpr n) {
  for_(tid(), n, lsize(), [&](Val i) { store(y[tid()], load(x[program_id(0) * n + i])); });
}
}  // namespace

TEST(WidenIndices, RefusesALoopInductionWhoseBoundsMayHaveWrapped) {
  auto trace = [](void (*fn)(In<f32>, Out<f32>, Constexpr), const char* name) {
    return define_kernel(name, ir::Mode::Reduction, {"x", "y", "n"}, fn).trace(ScalarType::f32);
  };
  try {
    passes::widen_indices(trace(&loop_over_offsets, "loop_over_offsets"), {"x"});
    FAIL() << "an induction over wrapped bounds was widened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "tensor 'x' needs 64-bit offsets")) << e.what();
    EXPECT_TRUE(contains(e.what(), "u32 bounds may have wrapped")) << e.what();
  }
  ir::Function ok = passes::widen_indices(trace(&loop_within_row, "loop_within_row"), {"x"});
  EXPECT_EQ(offset_widths(ok).first, std::set<std::string>{"x"});
}

namespace {
void read_row(In<u8> x, Out<u32> y, Constexpr row, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[row * n + i]).cast(ScalarType::u32)); });
}

Kernel read_row_kernel() {
  using rule::var;
  KernelSpec k;
  k.def = define_kernel("widen_read_row", ir::Mode::Elementwise, {"x", "y", "row", "n"}, &read_row, ScalarType::u8);
  k.summary = "y = x[row, :] of a rows x n byte matrix";
  k.dims = {"rows", "row", "n"};
  k.dispatch = {.grid = rule::ceil_div(var("n"), 256), .tpg = 256};
  k.preconditions = {var("row") < var("rows")};
  k.sizes = {{"x", var("rows") * var("n")}, {"y", var("n")}};
  k.reference = [](const Shape&, HostTensors&) {};
  k.tolerance = {{ScalarType::u8, {0, 0}}};
  k.test_shapes = {{{"rows", 2}, {"row", 1}, {"n", 4}}};
  return make_kernel(std::move(k));
}
}  // namespace

// x has 2^32 + 2^13 elements, mapped sparsely (only the pages touched exist). Row `rows - 1`
// starts at 2^32 + 4096: with 32-bit offsets the kernel would read element 4096 instead.
TEST(WidenIndices, ReadsPast2To32ElementsOnSparseMemory) {
  const uint32_t n = 4096, rows = (1u << 20) + 2, row = rows - 1;
  const uint64_t count = uint64_t{rows} * n, far = uint64_t{row} * n;
  void* mem = mmap(nullptr, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) GTEST_SKIP() << "no 4 GiB of address space for the sparse mapping";
  auto* x = static_cast<uint8_t*>(mem);
  for (uint32_t i = 0; i < n; ++i) {
    x[far + i] = static_cast<uint8_t>(1 + i % 200);
    x[static_cast<uint32_t>(far + i)] = 255;  // where a wrapped offset lands
  }
  Kernel k = read_row_kernel();
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  std::vector<uint32_t> y(n, 0xdeadbeef);
  Buffer bx = cpu.wrap(reinterpret_cast<uint64_t>(x), ScalarType::u8, count);
  Buffer by = cpu.wrap(reinterpret_cast<uint64_t>(y.data()), ScalarType::u32, n);
  ctx.launch(cpu, k, ScalarType::u8, {{"rows", rows}, {"row", row}, {"n", n}}, {&bx, &by, nullptr, nullptr});
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 1 + i % 200) << i;
  cpu.release(bx);
  cpu.release(by);
  munmap(mem, count);
}
