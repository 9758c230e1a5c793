// vectorize_memory: which loads and stores it groups (exact counts), which it must leave alone,
// that the grouped code computes the same bits on the CPU engine, and the vector ops' verifier
// rules and launch-time alignment check.
#include <cstring>
#include <optional>
#include <random>

#include "backends/cuda/nvrtc.hpp"
#include "codegen/codegen.hpp"
#include "mtile/registry.hpp"
#include "mtile/runtime.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;

namespace {

// Vector ops by tensor name: "x load x4", "out store x4", "x load" (scalar).
std::map<std::string, int> memory_ops(const ir::Function& f) {
  std::map<std::string, int> n;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if (in.space != ir::MemSpace::Device) return;
    const char* what = nullptr;
    switch (in.op) {
      case ir::Op::Load:
      case ir::Op::LoadVector: what = "load"; break;
      case ir::Op::Store:
      case ir::Op::StoreVector: what = "store"; break;
      default: return;
    }
    std::string key = f.params.at(in.param).name + " " + what;
    if (in.lanes > 1) key += " x" + std::to_string(in.lanes);
    ++n[key];
  });
  return n;
}

int vector_ops(const ir::Function& f) {
  int n = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    n += in.op == ir::Op::LoadVector || in.op == ir::Op::StoreVector || in.op == ir::Op::Extract;
  });
  return n;
}

ir::Function seed(ScalarType t, bool bake) {
  passes::PipelineOptions opts;
  if (bake) opts.bake = {{"n", 4096}};
  return passes::run_pipeline(find_kernel("ffai_rms_norm_residual")->def.trace(t), Target::cpu(), opts);
}

// The pipeline without vectorize_memory, for comparisons.
ir::Function unvectorized(const ir::Function& traced, const std::map<std::string, uint32_t>& bake) {
  ir::Function f = passes::inline_calls(traced);
  f = passes::specialize_constexprs(f, bake);
  f = passes::lower_threadgroup_reductions(f, 32);
  f = passes::fold_constants(f);
  f = passes::eliminate_dead_code(f);
  ir::canonicalize(f);
  ir::verify(f);
  return f;
}

ir::Function lowered(const KernelDef& def, std::optional<ScalarType> t = {}) {
  return passes::run_pipeline(def.trace(t.value_or(def.dtypes()[0])), Target::cpu());
}

// Four consecutive elements per thread, copied with a scale; the stores in shuffled order.
template <class T>
void copy4(In<T> x, Out<T> y) {
  Val b = (program_id(0) * lsize() + tid()) * 4u;
  Val v0 = load(x[b]), v1 = load(x[b + 1u]), v2 = load(x[b + 2u]), v3 = load(x[b + 3u]);
  store(y[b + 2u], v2 * lit(T::type, 2.0));
  store(y[b], v0 * lit(T::type, 2.0));
  store(y[b + 3u], v3 * lit(T::type, 2.0));
  store(y[b + 1u], v1 * lit(T::type, 2.0));
}

// Eight per thread: one 16-byte access for 16-bit types; f32 would need 32 bytes.
void copy8(In<f16> x, Out<f16> y) {
  Val b = (program_id(0) * lsize() + tid()) << 3u;
  for (uint32_t k = 0; k < 8; ++k) store(y[b + k], load(x[b + k]));
}

// Base `row * n` with n not baked: nothing is provably aligned.
void unaligned_row(In<f32> x, Out<f32> y, Constexpr n) {
  Val b = program_id(0) * n + tid() * 4u;
  for (uint32_t k = 0; k < 4; ++k) store(y[b + k], load(x[b + k]));
}

// B = tid * 4 + 1: consecutive, but the base is odd. Only the middle pair, 4t + 2 and 4t + 3,
// is aligned (fold_constants makes `(4t + 1) + 1` read as `4t + 2`).
void misaligned_base(In<f32> x, Out<f32> y) {
  Val b = tid() * 4u + 1u;
  store(y[tid()], load(x[b]) + load(x[b + 1u]) + load(x[b + 2u]) + load(x[b + 3u]));
}

// A store to the tensor between its loads: the loads must not move across it.
void store_between(InOut<f32> t, Out<f32> y) {
  Val b = tid() * 4u;
  Val a0 = load(t[b]);
  store(t[b + 1u], a0 * 2.0f);
  store(y[tid()], a0 + load(t[b + 1u]) + load(t[b + 2u]) + load(t[b + 3u]));
}
void no_store_between(InOut<f32> t, Out<f32> y) {
  Val b = tid() * 4u;
  Val a0 = load(t[b]);
  store(y[tid()], a0 + load(t[b + 1u]) + load(t[b + 2u]) + load(t[b + 3u]));
  store(t[b + 1u], a0 * 2.0f);
}

// A load of the tensor between its stores: the stores must not move across it.
void load_between(InOut<f32> t, Out<f32> y) {
  Val b = tid() * 4u;
  store(t[b], lit(1.0f));
  store(t[b + 1u], lit(2.0f));
  store(y[tid()], load(t[b]));
  store(t[b + 2u], lit(3.0f));
  store(t[b + 3u], lit(4.0f));
}

// Two elements per thread through a mask: (tid * 6) & ~1 is even.
void masked_pair(In<f32> x, Out<f32> y) {
  Val b = (tid() * 6u) & 0xfffffffeu;
  store(y[tid()], load(x[b]) + load(x[b + 1u]));
}

// Threadgroup memory, as an mma fragment is read from it: each thread writes 16 elements, then
// reads its pairs at b, b + 1 and b + 8, b + 9 (one f16 pair is a 32-bit word). `wait_between`
// puts a copy_async_wait between the two elements of the second pair: the array may change there.
void fragment_pairs(In<f16> x, Out<f32> y, bool wait_between) {
  TgArray tile = threadgroup_array<f16>(16 * 64);
  Val b = tid() * 16u;
  for (uint32_t k = 0; k < 16; ++k) store(tile[b + k], load(x[b + k]));
  barrier();
  Val s = load(tile[b]) + load(tile[b + 1u]) + load(tile[b + 8u]);
  if (wait_between) copy_async_wait(0);
  store(y[tid()], (s + load(tile[b + 9u])).cast<f32>());
}
void fragment_pairs_plain(In<f16> x, Out<f32> y) {
  fragment_pairs(x, y, false);
}
void fragment_pairs_wait(In<f16> x, Out<f32> y) {
  fragment_pairs(x, y, true);
}

// Threadgroup accesses by kind: "load x2", "store x8", "load" (scalar).
std::map<std::string, int> threadgroup_ops(const ir::Function& f) {
  std::map<std::string, int> n;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    bool load = in.op == ir::Op::Load || in.op == ir::Op::LoadVector;
    bool store = in.op == ir::Op::Store || in.op == ir::Op::StoreVector;
    if (in.space != ir::MemSpace::Threadgroup || (!load && !store)) return;
    ++n[std::string(load ? "load" : "store") + (in.lanes > 1 ? " x" + std::to_string(in.lanes) : "")];
  });
  return n;
}

}  // namespace

TEST(VectorizeMemory, GroupsThreadgroupPairsOfAnMmaFragment) {
  KernelDef plain =
      define_kernel("fragment_pairs", ir::Mode::Reduction, {"x", "y"}, &fragment_pairs_plain, ScalarType::f16);
  ir::Function f = lowered(plain);
  // 16 stores of 2 bytes are two 16-byte accesses; b, b + 1 and b + 8, b + 9 two 32-bit loads.
  std::map<std::string, int> want = {{"store x8", 2}, {"load x2", 2}};
  EXPECT_EQ(threadgroup_ops(f), want) << ir::print(f);
  EXPECT_TRUE(contains(ir::print(f), "= load tg %")) << ir::print(f);
  // The CUDA source reads the array through a 32-bit word, aligned by its declaration.
  std::string cuda = codegen::emit_cuda(passes::run_pipeline(plain.trace(ScalarType::f16), Target::cuda("sm_90a")));
  EXPECT_TRUE(contains(cuda, "__shared__ __align__(16)")) << cuda;
  EXPECT_TRUE(contains(cuda, "*reinterpret_cast<const unsigned int*>(tg")) << cuda;
  // An async-copy wait between b + 8 and b + 9: that pair stays two loads.
  ir::Function g = lowered(
      define_kernel("fragment_pairs_wait", ir::Mode::Reduction, {"x", "y"}, &fragment_pairs_wait, ScalarType::f16));
  want = {{"store x8", 2}, {"load x2", 1}, {"load", 2}};
  EXPECT_EQ(threadgroup_ops(g), want) << ir::print(g);
}

TEST(VectorizeMemory, GroupsTheSeedKernelsAccessesWhenNIsBaked) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16, ScalarType::f32}) {
    ir::Function f = seed(t, true);
    // eps_buf is read once more in the f32 and bf16 variants' rescue of rows whose sum of squares
    // overflows (kernels/norm/huge_rows.hpp).
    const int eps_loads = t == ScalarType::f16 ? 1 : 2;
    std::map<std::string, int> want = {
        {"x load x4", 1}, {"residual load x4", 1}, {"w load x4", 1}, {"out store x4", 1}, {"eps_buf load", eps_loads}};
    EXPECT_EQ(memory_ops(f), want) << ir::print(f);
    EXPECT_TRUE(contains(ir::print(f), "store out[%")) << ir::print(f);
  }
}

// Rows start at row * n: with n a launch argument nothing says they are aligned. w[tid * 4] is.
TEST(VectorizeMemory, SplitsEightF32ValuesIntoTwoGroupsOfFour) {
  // rms_norm_residual's chunks of 8: for f32 (16 bytes = 4 lanes) B+0..3 and B+4..7 are groups.
  passes::PipelineOptions opts;
  opts.bake = {{"n", 4096}};
  ir::Function f =
      passes::run_pipeline(find_kernel("rms_norm_residual")->def.trace(ScalarType::f32), Target::cpu(), opts);
  auto ops = memory_ops(f);
  // x is read in both passes (8 values = 2 groups each), residual and w once, out written once.
  EXPECT_EQ(ops["x load x4"], 4) << ir::print(f);
  EXPECT_EQ(ops["residual load x4"], 2);
  EXPECT_EQ(ops["w load x4"], 2);
  EXPECT_EQ(ops["out store x4"], 2);
  // The n % 8 tail loop keeps its scalar accesses.
  EXPECT_EQ(ops["out store"], 1);
  // bf16: one 16-byte group of 8.
  ir::Function h =
      passes::run_pipeline(find_kernel("rms_norm_residual")->def.trace(ScalarType::bf16), Target::cpu(), opts);
  EXPECT_EQ(memory_ops(h)["x load x8"], 2);
  EXPECT_EQ(memory_ops(h)["out store x8"], 1);
}

TEST(VectorizeMemory, GroupsAccessesFarFromTheirBase) {
  // allreduce_add_rms_norm reads rank p's chunk at B + p * x_slot: with x_slot baked, an offset of
  // millions from B. Both ranks' 8 bf16 values are 16-byte loads, as are residual's and w's.
  passes::PipelineOptions opts;
  opts.bake = {{"n", 4096}, {"rows", 1000}, {"x_slot", 1u << 22}, {"flags_slot", 64}};
  dsl::Config config = {{"peers", 2},    {"shots", 1},         {"threads", 512},  {"resident", 4},
                        {"blocks", 132}, {"x_slot", 1u << 22}, {"flags_slot", 64}};
  ir::Function f = passes::run_pipeline(find_kernel("allreduce_add_rms_norm")->def.trace(ScalarType::bf16, config),
                                        Target::cpu(), opts);
  auto ops = memory_ops(f);
  EXPECT_EQ(ops["x load x8"], 2) << ir::print(f);
  EXPECT_EQ(ops["x load"], 0);
  EXPECT_EQ(ops["residual store x8"], 1);
  EXPECT_EQ(ops["out store x8"], 1);
  // Offsets in different windows of 64 are different groups: B + 0..3 and B + 64..67 of f32.
  KernelDef far = define_kernel(
      "far", ir::Mode::Reduction, {"x", "y"}, +[](In<f32> x, Out<f32> y) {
        Val b = tid() * 128u;
        Val s = load(x[b]) + load(x[b + 1u]) + load(x[b + 2u]) + load(x[b + 3u]);
        Val t = load(x[b + 64u]) + load(x[b + 65u]) + load(x[b + 66u]) + load(x[b + 67u]);
        store(y[tid()], s + t);
      });
  ir::Function g = passes::run_pipeline(far.trace(ScalarType::f32), Target::cuda("sm_90a"));
  EXPECT_EQ(memory_ops(g)["x load x4"], 2) << ir::print(g);
}

TEST(VectorizeMemory, LeavesRowAccessesAloneWhenNIsALaunchArgument) {
  for (ScalarType t : {ScalarType::bf16, ScalarType::f32}) {
    ir::Function f = seed(t, false);
    std::map<std::string, int> want = {
        {"x load", 4}, {"residual load", 4}, {"w load x4", 1}, {"out store", 4}, {"eps_buf load", 2}};
    EXPECT_EQ(memory_ops(f), want) << ir::print(f);
  }
}

TEST(VectorizeMemory, PrintsVectorOps) {
  std::string text = ir::print(seed(ScalarType::bf16, true));
  EXPECT_TRUE(contains(text, "] x4 : bf16")) << text;
  EXPECT_TRUE(contains(text, "= extract %")) << text;
  EXPECT_TRUE(contains(text, "store out[%")) << text;
}

TEST(VectorizeMemory, GroupsStoresInAnyOrderAtTheLastStore) {
  KernelDef def =
      define_generic_kernel("copy4", ir::Mode::Elementwise, {"x", "y"}, &copy4<f32>, &copy4<f16>, &copy4<bf16>);
  for (ScalarType t : {ScalarType::f32, ScalarType::bf16}) {
    ir::Function f = lowered(def, t);
    std::map<std::string, int> want = {{"x load x4", 1}, {"y store x4", 1}};
    EXPECT_EQ(memory_ops(f), want) << ir::print(f);
  }
  ir::Function f8 = lowered(define_kernel("copy8", ir::Mode::Elementwise, {"x", "y"}, &copy8, ScalarType::f16));
  std::map<std::string, int> want8 = {{"x load x8", 1}, {"y store x8", 1}};
  EXPECT_EQ(memory_ops(f8), want8) << ir::print(f8);
}

TEST(VectorizeMemory, LeavesUnprovableAlignmentAlone) {
  ir::Function row = lowered(define_kernel("unaligned_row", ir::Mode::Reduction, {"x", "y", "n"}, &unaligned_row));
  EXPECT_EQ(vector_ops(row), 0) << ir::print(row);
  ir::Function odd = lowered(define_kernel("misaligned_base", ir::Mode::Reduction, {"x", "y"}, &misaligned_base));
  std::map<std::string, int> want = {{"x load", 2}, {"x load x2", 1}, {"y store", 1}};
  EXPECT_EQ(memory_ops(odd), want) << ir::print(odd);
  ir::Function masked = lowered(define_kernel("masked_pair", ir::Mode::Reduction, {"x", "y"}, &masked_pair));
  EXPECT_EQ(memory_ops(masked)["x load x2"], 1) << ir::print(masked);
}

TEST(VectorizeMemory, DoesNotMoveLoadsAcrossAStoreToTheTensor) {
  ir::Function f = lowered(define_kernel("store_between", ir::Mode::Reduction, {"t", "y"}, &store_between));
  // t[b] (before the store) and t[b + 1] (after it) stay scalar; t[b + 2], t[b + 3] pair up.
  std::map<std::string, int> want = {{"t load", 2}, {"t load x2", 1}, {"t store", 1}, {"y store", 1}};
  EXPECT_EQ(memory_ops(f), want) << ir::print(f);
  ir::Function g = lowered(define_kernel("no_store_between", ir::Mode::Reduction, {"t", "y"}, &no_store_between));
  EXPECT_EQ(memory_ops(g)["t load x4"], 1) << ir::print(g);
}

TEST(VectorizeMemory, DoesNotMoveStoresAcrossALoadOfTheTensor) {
  ir::Function f = lowered(define_kernel("load_between", ir::Mode::Reduction, {"t", "y"}, &load_between));
  // t[b], t[b + 1] before the load pair up, and t[b + 2], t[b + 3] after it; nothing crosses it.
  std::map<std::string, int> want = {{"t store x2", 2}, {"t load", 1}, {"y store", 1}};
  EXPECT_EQ(memory_ops(f), want) << ir::print(f);
}

// The vectorised seed against the same pipeline without vectorize_memory, on random inputs.
TEST(VectorizeMemory, SeedGivesBitIdenticalResultsOnTheCpuEngine) {
  Kernel k = find_kernel("ffai_rms_norm_residual");
  const uint32_t rows = 5, n = 4096;
  Shape shape{{"rows", rows}, {"n", n}};
  std::map<std::string, uint32_t> bake = {{"n", n}};
  for (ScalarType t : {ScalarType::bf16, ScalarType::f16, ScalarType::f32}) {
    ir::Function vec = seed(t, true);
    ir::Function ref = unvectorized(k->def.trace(t), bake);
    ASSERT_GT(vector_ops(vec), 0);
    ASSERT_EQ(vector_ops(ref), 0);
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<std::vector<uint8_t>> data(ref.params.size());
    for (size_t i = 0; i < ref.params.size(); ++i) {
      const ir::Param& p = ref.params[i];
      if (p.kind != ir::ParamKind::Tensor) continue;
      data[i].resize(resolve(k.spec(), shape, Target::cpu()).elements.at(p.name) * storage_bytes(p.elem));
      for (size_t e = 0; e < data[i].size() / storage_bytes(p.elem); ++e) {
        float v = p.name == "eps_buf" ? 1e-6f : dist(rng);
        if (p.elem == ScalarType::f32) std::memcpy(&data[i][e * 4], &v, 4);
        uint16_t h = p.elem == ScalarType::f16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
        if (p.elem != ScalarType::f32) std::memcpy(&data[i][e * 2], &h, 2);
      }
    }
    std::vector<std::vector<uint8_t>> a = data, b = data;
    auto run = [&](const ir::Function& f, std::vector<std::vector<uint8_t>>& bufs) {
      std::vector<cpu::TensorView> views;
      std::vector<uint64_t> constexprs(f.params.size(), 0);
      for (size_t i = 0; i < f.params.size(); ++i) {
        const ir::Param& p = f.params[i];
        if (p.kind == ir::ParamKind::Tensor) {
          views.push_back({bufs[i].data(), p.elem, bufs[i].size() / storage_bytes(p.elem)});
        } else {
          views.push_back({});
          constexprs[i] = n;
        }
      }
      cpu::execute(f, resolve(k.spec(), shape, Target::cpu()).geometry, views, constexprs);
    };
    run(vec, a);
    run(ref, b);
    int out = ref.param_index("out");
    EXPECT_EQ(a[out], b[out]) << type_name(t);
    EXPECT_NE(a[out], data[out]) << "nothing was written";
  }
}

// Verifier rules of the vector ops, on a hand-built function.
namespace {
ir::Function vector_function(ir::Role x_role) {
  ir::Function f;
  f.name = "vec";
  f.params = {{"x", ir::ParamKind::Tensor, ScalarType::f32, x_role},
              {"y", ir::ParamKind::Tensor, ScalarType::f32, ir::Role::Out}};
  auto add = [&](ir::Op op, ScalarType t, std::vector<ir::Id> args, bool defines = true) -> ir::Inst& {
    ir::Inst in;
    in.op = op;
    in.type = t;
    in.args = std::move(args);
    if (defines) in.result = f.fresh_id();
    f.body.insts.push_back(in);
    return f.body.insts.back();
  };
  ir::Id tid = add(ir::Op::ThreadId, ScalarType::u32, {}).result;
  ir::Inst& v = add(ir::Op::LoadVector, ScalarType::f32, {tid});
  v.param = 0;
  v.lanes = 2;
  ir::Id vec = v.result;
  ir::Inst& e = add(ir::Op::Extract, ScalarType::f32, {vec});
  e.bits = 1;
  ir::Id lane1 = e.result;
  ir::Inst& s = add(ir::Op::StoreVector, ScalarType::f32, {tid, lane1, lane1}, false);
  s.param = 1;
  s.lanes = 2;
  return f;
}

std::string verify_error(const ir::Function& f) {
  try {
    ir::verify(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "verified";
}
}  // namespace

TEST(VectorizeMemory, VerifierChecksVectorOps) {
  ir::Function ok = vector_function(ir::Role::In);
  EXPECT_EQ(verify_error(ok), "verified");
  ir::Function lane = ok;
  lane.body.insts[2].bits = 2;
  EXPECT_TRUE(contains(verify_error(lane), "lane 2 of a 2-lane vector")) << verify_error(lane);
  ir::Function lanes = ok;
  lanes.body.insts[1].lanes = 3;
  EXPECT_TRUE(contains(verify_error(lanes), "3 lanes (2, 4 or 8)")) << verify_error(lanes);
  ir::Function scalar_use = ok;
  scalar_use.body.insts[3].args[1] = scalar_use.body.insts[1].result;  // the vector itself stored
  EXPECT_TRUE(contains(verify_error(scalar_use), "only extract reads it")) << verify_error(scalar_use);
  ir::Function to_input = ok;
  to_input.body.insts[3].param = 0;
  EXPECT_TRUE(contains(verify_error(to_input), "stores to 'x', an input")) << verify_error(to_input);
  ir::Function arity = ok;
  arity.body.insts[3].args.pop_back();
  EXPECT_TRUE(contains(verify_error(arity), "expects 3 operands")) << verify_error(arity);
  EXPECT_TRUE(contains(ir::print(ok), "= load x[%0] x2 : f32")) << ir::print(ok);
  EXPECT_TRUE(contains(ir::print(ok), "= extract %1.1 : f32")) << ir::print(ok);
  EXPECT_TRUE(contains(ir::print(ok), "store y[%0] x2, %2, %2 : f32")) << ir::print(ok);
}

TEST(VectorizeMemory, LaunchRefusesABufferThatIsNot16ByteAligned) {
  Kernel k = find_kernel("ffai_rms_norm_residual");
  auto cpu = make_backend("cpu");
  Shape shape{{"rows", 1}, {"n", 128}};
  std::vector<Buffer> bufs;
  std::vector<Buffer*> ptrs;
  for (const ir::Param& p : k->def.trace(ScalarType::f32).params)
    bufs.push_back(p.kind == ir::ParamKind::Tensor
                       ? cpu->alloc(p.elem, resolve(k.spec(), shape, Target::cpu()).elements.at(p.name) + 4)
                       : Buffer{});
  for (Buffer& b : bufs) {
    if (b.owner) {
      EXPECT_EQ(b.handle % 16, 0u);
    }
    ptrs.push_back(b.owner ? &b : nullptr);
  }
  Buffer shifted = bufs[1];
  shifted.handle += 4;  // one f32 in: still in the allocation, no longer 16-byte aligned
  ptrs[1] = &shifted;
  try {
    launch(*cpu, k, ScalarType::f32, shape, ptrs);
    ADD_FAILURE() << "launched";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "ffai_rms_norm_residual")) << e.what();
    EXPECT_TRUE(contains(e.what(), "buffer for 'residual' at 0x")) << e.what();
    EXPECT_TRUE(contains(e.what(), "is not 16-byte aligned")) << e.what();
  }
  for (Buffer& b : bufs)
    if (b.owner) cpu->release(b);
}

// Every packed type the CUDA printer can write (1, 2 and 4 words; f32, u32, i32, f16, bf16), from
// device and threadgroup memory, through NVRTC for sm_90a. Metal targets get no vector accesses, and the MSL printer
// refuses them.
TEST(VectorizeMemory, VectorCodeCompilesWithNvrtc) {
  std::vector<ir::Function> fs = {
      lowered(define_kernel("copy4_f32", ir::Mode::Elementwise, {"x", "y"}, &copy4<f32>)),
      lowered(define_kernel("copy4_u32", ir::Mode::Elementwise, {"x", "y"}, &copy4<u32>, ScalarType::u32)),
      lowered(define_kernel("copy4_i32", ir::Mode::Elementwise, {"x", "y"}, &copy4<i32>, ScalarType::i32)),
      lowered(define_kernel("copy4_bf16", ir::Mode::Elementwise, {"x", "y"}, &copy4<bf16>, ScalarType::bf16)),
      lowered(define_kernel("copy8", ir::Mode::Elementwise, {"x", "y"}, &copy8, ScalarType::f16)),
      lowered(define_kernel("masked_pair", ir::Mode::Reduction, {"x", "y"}, &masked_pair)),
      lowered(define_kernel("fragment_pairs", ir::Mode::Reduction, {"x", "y"}, &fragment_pairs_plain, ScalarType::f16)),
  };
  std::string cuda_text = codegen::emit_cuda(fs[4]);
  EXPECT_TRUE(contains(cuda_text, "uint4 v")) << cuda_text;
  EXPECT_TRUE(contains(cuda_text, "*reinterpret_cast<uint4*>(y + ")) << cuda_text;
  try {
    codegen::emit_msl(fs[0]);
    ADD_FAILURE() << "MSL printed a vector access";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "lower the kernel for its target")) << e.what();
  }
  KernelDef copy = define_kernel("copy4_f32", ir::Mode::Elementwise, {"x", "y"}, &copy4<f32>);
  ir::Function metal = passes::run_pipeline(copy.trace(ScalarType::f32), Target::metal("apple9"));
  EXPECT_EQ(vector_ops(metal), 0) << ir::print(metal);
  EXPECT_TRUE(contains(codegen::emit_msl(metal), "y[")) << codegen::emit_msl(metal);
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  for (const ir::Function& f : fs) {
    ASSERT_GT(vector_ops(f), 0) << ir::print(f);
    EXPECT_NO_THROW(cuda::nvrtc_compile(codegen::emit_cuda(f), f.name + ".cu", "sm_90a")) << codegen::emit_cuda(f);
  }
}
