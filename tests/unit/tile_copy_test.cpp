// Tile copies (docs/IR.md "Tile copies"): one thread copies a box of a tensor into threadgroup
// memory and the others wait on its mbarrier. The CPU engine's boxes against the documented
// layout (rank 1-3, negative and past-the-end coordinates as zeros, the 128-byte swizzle), the
// sanitizer and the engine's refusals, the IR text, what CUDA prints and NVRTC compiles, and the
// refusals of sm_80, Metal and views fixed only at launch.
#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "codegen/tile_maps.hpp"
#include "mtile/dsl.hpp"
#include "mtile/dsl_matrix.hpp"
#include "test_util.hpp"

using namespace mtile;
using namespace mtile::dsl;
using mtile::testing::contains;
using mtile::testing::error_of;
using mtile::testing::geometry;

namespace {

constexpr uint32_t kThreads = 128;

// A view of x and a box of it, as the kernel and the reference both read them.
struct Box {
  std::vector<uint32_t> dims, strides, box;
  std::vector<int32_t> at;
  uint32_t swizzle = 0;
  uint64_t elements() const {
    uint64_t n = 1;
    for (uint32_t b : box) n *= b;
    return n;
  }
};

Box case_box(uint32_t which) {
  switch (which) {
    case 0: return {{40, 5}, {44}, {8, 4}, {12, 3}, 0};            // rows 5 and 6 and columns past 40: zeros
    case 1: return {{40, 5}, {44}, {32, 4}, {-4, -1}, 128};        // swizzled 128-byte rows, negative corner
    case 2: return {{8, 3, 4}, {8, 24}, {8, 2, 3}, {0, 2, 2}, 0};  // rank 3
    case 3: return {{200}, {}, {64}, {160}, 0};                    // rank 1
    default: return {{32, 6}, {32}, {32, 4}, {0, 1}, 128};         // a whole swizzled box inside
  }
}

// Thread 0 copies the box into `tile` through mbarrier 0; every thread waits for the phase and
// thread t below the box's size writes tile[t] to y[t]. Config `bad`: 1 no wait, 2 an
// announcement 4 bytes short, 3 a destination 16 bytes off its alignment, 4 a view past the end of
// x, 5 thread 0 reads the tile between its copy and the announcement that completes the phase.
void tile_box(In<f32> x, Out<f32> y) {
  const uint32_t which = config("box", 0), bad = config("bad", 0);
  Box b = case_box(which);
  if (bad == 4) b.dims.back() += 40;
  TgArray tile = threadgroup_array<f32>(2 * kThreads);
  Mbarriers full = mbarriers(1);
  if_(tid() == 0u, [&] { full.init(0u, 1u); });
  barrier();
  TileView view{x, {}, {}, b.box, b.swizzle};
  for (uint32_t d : b.dims) view.dims.push_back(d);
  for (uint32_t s : b.strides) view.strides.push_back(s);
  std::vector<Val> at;
  for (int32_t c : b.at) at.push_back(lit(c));
  const uint32_t bytes = static_cast<uint32_t>(b.elements() * 4);
  if_(tid() == 0u, [&] {
    if (bad == 5) {
      copy_tile(tile[0u], view, at, full, 0u);
      store(y[0u], load(tile[0u]));
    }
    full.arrive_expect(0u, bad == 2 ? bytes - 4 : bytes);
    if (bad != 5) copy_tile(tile[bad == 3 ? 4u : 0u], view, at, full, 0u);
  });
  if (bad != 1) full.wait(0u, 0u);
  if_(tid() < static_cast<uint32_t>(b.elements()), [&] { store(y[tid()], load(tile[tid()])); });
}

const KernelDef& tile_kernel() {
  static const KernelDef k = define_kernel("tile_box", ir::Mode::Reduction, {"x", "y"}, &tile_box);
  return k;
}

ir::Function tile_ir(const Target& target, uint32_t which, uint32_t bad = 0) {
  return passes::run_pipeline(tile_kernel().trace(ScalarType::f32, Config{{"box", which}, {"bad", bad}}), target);
}

// The box as docs/IR.md defines it: element e (dim 0 fastest) lands at e, or with the swizzle at
// chunk q ^ (row % 8) of its 128-byte row; elements outside the view are zeros.
std::vector<float> expected(const Box& b, const std::vector<float>& x) {
  std::vector<float> want(b.elements());
  for (uint64_t e = 0; e < b.elements(); ++e) {
    uint64_t rest = e, offset = 0;
    bool inside = true;
    for (size_t d = 0; d < b.box.size(); ++d) {
      const int64_t c = b.at[d] + static_cast<int64_t>(rest % b.box[d]);
      rest /= b.box[d];
      inside = inside && c >= 0 && c < static_cast<int64_t>(b.dims[d]);
      offset += static_cast<uint64_t>(c) * (d ? b.strides[d - 1] : 1);
    }
    uint64_t k = e;
    if (b.swizzle) {
      const uint64_t row = e / b.box[0], chunk = e % b.box[0] / 4;
      k = row * b.box[0] + (chunk ^ (row % 8)) * 4 + e % 4;
    }
    want[k] = inside ? x[offset] : 0.0f;
  }
  return want;
}

struct BoxRun {
  std::vector<float> x, y;
  std::string error;
};

BoxRun run_box(uint32_t which, uint32_t bad = 0, bool sanitize = true) {
  BoxRun r;
  std::mt19937 rng(which * 7 + bad);
  std::uniform_real_distribution<float> u(1.0f, 2.0f);  // never zero: a zero in y is a filled element
  r.x.resize(256);
  for (float& v : r.x) v = u(rng);
  r.y.assign(kThreads, NAN);
  try {
    cpu::execute(tile_ir(Target::cpu(), which, bad), geometry(1, kThreads),
                 {{r.x.data(), ScalarType::f32, r.x.size()}, {r.y.data(), ScalarType::f32, r.y.size(), true}}, {0, 0},
                 {.sanitize = sanitize});
  } catch (const Error& e) {
    r.error = e.what();
  }
  return r;
}

TEST(TileCopy, TheEngineLandsTheBoxAsDocumentedWithZerosOutsideTheView) {
  for (uint32_t which = 0; which < 5; ++which)
    for (bool sanitize : {true, false}) {
      BoxRun r = run_box(which, 0, sanitize);
      ASSERT_EQ(r.error, "") << "box " << which;
      std::vector<float> want = expected(case_box(which), r.x);
      ASSERT_LE(want.size(), r.y.size());
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(r.y[i], want[i]) << "box " << which << " element " << i;
      size_t zeros = 0;
      for (float v : want) zeros += v == 0.0f;
      if (which < 4) {
        EXPECT_GT(zeros, 0u) << "box " << which << " reaches outside its view";
      }
    }
}

TEST(TileCopy, TheSanitizerAndTheEngineRefuseWhatAGpuWouldGetWrong) {
  std::string no_wait = run_box(0, 1).error;
  EXPECT_TRUE(contains(no_wait, "kernel tile_box<f32>: race on threadgroup array")) << no_wait;
  EXPECT_TRUE(contains(no_wait, "thread 0 wrote it and thread 1 reads it with no barrier between (nor an mbarrier"))
      << no_wait;
  std::string early = run_box(0, 5).error;
  EXPECT_TRUE(contains(early, "kernel tile_box<f32>: read of threadgroup array")) << early;
  EXPECT_TRUE(contains(early, "which a copy_tile of thread 0 is still writing: wait on its mbarrier's phase")) << early;
  for (bool sanitize : {true, false}) {
    std::string short_of = run_box(0, 2, sanitize).error;
    EXPECT_TRUE(contains(short_of, "got every arrival but 4 bytes of copy_tile more than its arrive_expect"))
        << short_of;
    std::string misaligned = run_box(0, 3, sanitize).error;
    EXPECT_TRUE(contains(misaligned, "copy_tile of a 32-element box from 'x'")) << misaligned;
    EXPECT_TRUE(contains(misaligned, "the destination's byte offset 16 is not a multiple of 128")) << misaligned;
    std::string past = run_box(0, 4, sanitize).error;
    EXPECT_TRUE(contains(past, "the view reaches element")) << past;
  }
}

// A box of 300 elements a row (at most 256), and a rank-2 view without its stride.
void big_box(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(512);
  Mbarriers b = mbarriers(1);
  copy_tile(tile[0u], TileView{x, {400u}, {}, {300}}, {lit(0)}, b, 0u);
  store(y[tid()], load(tile[tid()]));
}
void strideless_box(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(512);
  Mbarriers b = mbarriers(1);
  copy_tile(tile[0u], TileView{x, {40u, 4u}, {}, {8, 4}}, {lit(0), lit(0)}, b, 0u);
  store(y[tid()], load(tile[tid()]));
}

TEST(TileCopy, TheIrTextAndTheDslRefusals) {
  std::string text = ir::print(tile_ir(Target::cpu(), 1));
  EXPECT_TRUE(contains(text, "copy_tile.sw128 ")) << text;
  EXPECT_TRUE(contains(text, "x[box ")) << text;
  EXPECT_TRUE(contains(text, "mbarrier_arrive.expect ")) << text;
  std::string big = error_of([] {
    define_kernel("big_box", ir::Mode::Reduction, {"x", "y"}, &big_box).trace(ScalarType::f32);
  });
  EXPECT_TRUE(contains(big, "copy_tile into threadgroup array")) << big;
  EXPECT_TRUE(contains(big, "box size 300 (1 to 256 elements a dim)")) << big;
  std::string rank = error_of([] {
    define_kernel("strideless_box", ir::Mode::Reduction, {"x", "y"}, &strideless_box).trace(ScalarType::f32);
  });
  EXPECT_TRUE(contains(rank, "one stride fewer")) << rank;
}

// Fragments read back from a swizzled box (MatrixRef::swizzled128) against the same fragments
// read from the tensor: x is 32 rows of 128 bf16 columns, copied as two boxes of 64 columns (the
// second block at 32 * 64); the simdgroup loads B both ways (n-major at k0 = 80, k-major at n0 =
// 72) and y holds tile's elements, then x's.
template <class T>
void swizzled_fragments(In<T> x, Out<f32> y) {
  TgArray tile = threadgroup_array<T>(32 * 128);
  Mbarriers full = mbarriers(1);
  if_(tid() == 0u, [&] { full.init(0u, 1u); });
  barrier();
  const TileView view{x, {128u, 32u}, {128u}, {64, 32}, 128};
  if_(tid() == 0u, [&] {
    full.arrive_expect(0u, 32 * 128 * 2);
    for (int32_t c = 0; c < 2; ++c) copy_tile(tile[lit(uint32_t(c) * 32 * 64)], view, {lit(c * 64), lit(0)}, full, 0u);
  });
  full.wait(0u, 0u);
  MatrixRef swizzled = MatrixRef(tile, 128u, 0u).swizzled128(32 * 64), plain = MatrixRef(x, 128u);
  std::vector<Val> got, want;
  for (const MatrixRef* m : {&swizzled, &plain}) {
    std::vector<Val>& out = m == &plain ? want : got;
    for (const MmaB& b : load_mma_b_nk_x2(*m, 8u, 80u))
      for (const Val& v : b.v) out.push_back(v);
    for (const MmaB& b : load_mma_b_kn_x2(*m, 16u, 72u))
      for (const Val& v : b.v) out.push_back(v);
  }
  for (size_t i = 0; i < got.size(); ++i) {
    store(y[tid() * 16u + static_cast<uint32_t>(i)], got[i].cast(ScalarType::f32));
    store(y[512u + tid() * 16u + static_cast<uint32_t>(i)], want[i].cast(ScalarType::f32));
  }
}

template <class T>
void swizzled_device(In<T> x, Out<f32> y) {
  (void)MatrixRef(x, 128u).swizzled128(64u);
  store(y[0u], lit(0.0f));
}

TEST(TileCopy, FragmentsOfASwizzledBoxAreTheTensorsFragments) {
  const KernelDef k = define_half_kernel("swizzled_fragments", ir::Mode::Reduction, {"x", "y"},
                                         MTILE_HALF_VARIANTS(swizzled_fragments));
  ir::Function f = passes::run_pipeline(k.trace(ScalarType::bf16), Target::cpu());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<uint16_t> x(32 * 128);
  for (uint16_t& v : x) v = f32_to_bf16_bits(u(rng));
  std::vector<float> y(1024, NAN);
  cpu::execute(f, geometry(1, 32),
               {{x.data(), ScalarType::bf16, x.size()}, {y.data(), ScalarType::f32, y.size(), true}}, {0, 0},
               {.sanitize = true});
  for (size_t i = 0; i < 512; ++i) {
    ASSERT_FALSE(std::isnan(y[i])) << i;
    EXPECT_EQ(y[i], y[512 + i]) << "fragment element " << i % 16 << " of lane " << i / 16;
  }
  EXPECT_TRUE(contains(codegen::emit_cuda(passes::run_pipeline(k.trace(ScalarType::bf16), Target::cuda("sm_90a"))),
                       "ldmatrix"));
  std::string device = error_of([] {
    define_half_kernel("swizzled_device", ir::Mode::Reduction, {"x", "y"}, MTILE_HALF_VARIANTS(swizzled_device))
        .trace(ScalarType::bf16);
  });
  EXPECT_TRUE(contains(device, "MatrixRef::swizzled128 of device memory")) << device;
}

// A view whose rows are a constexpr that a launch passes rather than bakes, times the grid's size,
// its stride a constexpr sum.
void launch_rows(In<f32> x, Out<f32> y, Constexpr rows) {
  TgArray tile = threadgroup_array<f32>(256);
  Mbarriers b = mbarriers(1);
  if_(tid() == 0u, [&] {
    b.init(0u, 1u);
    b.arrive_expect(0u, 512u);
    copy_tile(tile[0u], TileView{x, {32u, rows * grid_size(0)}, {rows + 32u}, {32, 4}}, {lit(0), lit(0)}, b, 0u);
  });
  b.wait(0u, 0u);
  store(y[tid()], load(tile[tid()]));
}

// A view that moves with the threadgroup: no tensor map can hold it.
void moving_view(In<f32> x, Out<f32> y) {
  TgArray tile = threadgroup_array<f32>(256);
  Mbarriers b = mbarriers(1);
  if_(tid() == 0u, [&] {
    b.init(0u, 1u);
    b.arrive_expect(0u, 512u);
    copy_tile(tile[0u], TileView{x, {32u, program_id(0) + 4u}, {32u}, {32, 4}}, {lit(0), lit(0)}, b, 0u);
  });
  b.wait(0u, 0u);
  store(y[tid()], load(tile[tid()]));
}

TEST(TileCopy, CudaPrintsOneTensorMapAViewThatNvrtcCompilesForSm90AndOtherTargetsRefuse) {
  ir::Function f = tile_ir(Target::cuda("sm_90a"), 1);
  std::string cuda = codegen::emit_cuda(f);
  for (const char* want :
       {"const __grid_constant__ mt_tensor_map mt_map0)", "mt_copy_tile2(&",
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes",
        "mbarrier.arrive.expect_tx.shared::cta.b64", "mt_mbarrier_arrive_expect(&", "__align__(1024)"})
    EXPECT_TRUE(contains(cuda, want)) << want << "\n" << cuda;
  std::vector<codegen::TileMap> maps = codegen::tile_maps(f);
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].rank, 2u);
  EXPECT_EQ(maps[0].swizzle, 128u);
  const std::array<uint32_t, 3> grid{1, 1, 1};
  EXPECT_TRUE(maps[0].dims[0].constant());
  EXPECT_EQ(maps[0].dims[0].eval({}, grid, kThreads), 40u);
  EXPECT_EQ(maps[0].dims[1].eval({}, grid, kThreads), 5u);
  EXPECT_EQ(maps[0].strides[1].eval({}, grid, kThreads), 44u);
  EXPECT_EQ(maps[0].box[0], 32u);
  std::string arch = error_of([&] { cuda::compile_for_arch(tile_ir(Target::cuda("sm_80"), 1), "sm_80"); });
  EXPECT_TRUE(contains(arch, "kernel tile_box<f32>: copy_tile (the tensor memory accelerator")) << arch;
  EXPECT_TRUE(contains(arch, "needs sm_90 or newer")) << arch;
  std::string msl = error_of([] { codegen::emit_msl(tile_ir(Target::metal("apple9"), 1)); });
  EXPECT_TRUE(contains(msl, "kernel tile_box")) << msl;
  EXPECT_TRUE(contains(msl, "no lowering")) << msl;
  // A launch constexpr and the grid's size reach the map as steps the backend evaluates at launch.
  ir::Function unbaked = passes::run_pipeline(
      define_kernel("launch_rows", ir::Mode::Reduction, {"x", "y", "rows"}, &launch_rows).trace(ScalarType::f32),
      Target::cuda("sm_90a"));
  std::vector<codegen::TileMap> late = codegen::tile_maps(unbaked);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_FALSE(late[0].dims[1].constant());
  const std::vector<uint64_t> values{0, 0, 7};  // x, y, rows
  EXPECT_EQ(late[0].dims[0].eval(values, {3, 1, 1}, kThreads), 32u);
  EXPECT_EQ(late[0].dims[1].eval(values, {3, 1, 1}, kThreads), 7u * 3u);
  EXPECT_EQ(late[0].strides[1].eval(values, {3, 1, 1}, kThreads), 7u + 32u);
  ir::Function moving = passes::run_pipeline(
      define_kernel("moving_view", ir::Mode::Reduction, {"x", "y"}, &moving_view).trace(ScalarType::f32),
      Target::cuda("sm_90a"));
  std::string why_not = error_of([&] { codegen::tile_maps(moving); });
  EXPECT_TRUE(contains(why_not,
                       "kernel moving_view: copy_tile from 'x': its size of dim 1 depends on 'program_id', which a "
                       "launch does not fix"))
      << why_not;
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  for (uint32_t which = 0; which < 5; ++which) {
    cuda::NvrtcResult r = cuda::compile_for_arch(tile_ir(Target::cuda("sm_90a"), which), "sm_90a");
    EXPECT_GT(r.cubin.size(), 0u) << which;
    EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
  }
  EXPECT_GT(cuda::compile_for_arch(unbaked, "sm_90a").cubin.size(), 0u);
}

}  // namespace
