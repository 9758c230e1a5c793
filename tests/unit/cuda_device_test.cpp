// The CUDA backend on a real GPU: buffers, launches, the kernel ABI, graph capture, timing, and the
// disk cache serving a second backend without NVRTC. Skips (with the reason) where no device opens.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include "backends/cuda/cuda_backend.hpp"
#include "mtile/dsl.hpp"
#include "mtile/runtime.hpp"
#include "passes/pipeline.hpp"

namespace mtile::cuda {
namespace {

namespace fs = std::filesystem;

// y[i] += 2 * x[i] for i < n: exact in f32 (doubling is exact), so results compare with ==.
constexpr const char* kScaleAdd = R"(
extern "C" __global__ void scale_add(const float* x, float* y, unsigned int n) {
  unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i] + y[i];
}
)";
const std::vector<ir::Param> kScaleAddParams = {{"x", ir::ParamKind::Tensor, ScalarType::f32, ir::Role::In},
                                                {"y", ir::ParamKind::Tensor, ScalarType::f32, ir::Role::InOut},
                                                {"n", ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In}};

// Each thread writes where it is: checks grid x/y/z and threads per threadgroup.
constexpr const char* kWhere = R"(
extern "C" __global__ void where(unsigned int* out) {
  unsigned int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  out[block * blockDim.x + threadIdx.x] = blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16 | threadIdx.x << 24;
}
)";

// Constexprs are unsigned ints, in parameter order, around tensors.
constexpr const char* kConstexprs = R"(
extern "C" __global__ void constexprs(unsigned int a, unsigned int* out, unsigned int b) {
  out[0] = a;
  out[1] = b;
}
)";

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mtile_cuda_device_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    env_dir_.emplace("MTILE_CACHE_DIR", dir_.c_str());
    env_switch_.emplace("MTILE_CACHE", nullptr);
    try {
      backend_ = std::make_unique<CudaBackend>();
    } catch (const Error& e) {
      GTEST_SKIP() << "no CUDA device: " << e.what();
    }
    static bool printed = false;
    if (!printed) {
      printed = true;
      std::cout << "[ device   ] " << backend_->device_name() << ", " << backend_->multiprocessors() << " SMs, NVRTC "
                << nvrtc_version() << ", driver for CUDA " << driver_version() << "\n";
    }
  }
  void TearDown() override {
    backend_.reset();
    fs::remove_all(dir_);
  }

  Buffer upload(const std::vector<float>& v) {
    Buffer b = backend_->alloc(ScalarType::f32, v.size());
    backend_->upload(b, v.data());
    return b;
  }
  template <class T>
  std::vector<T> download(const Buffer& b) {
    std::vector<T> v(b.bytes() / sizeof(T));
    backend_->download(b, v.data());
    return v;
  }
  static Geometry cover(uint32_t n, uint32_t tpg = 256) { return {{(n + tpg - 1) / tpg, 1, 1}, tpg}; }

  // Runs scale_add (y += 2x) through `exe` once and checks y.
  void check_scale_add(CudaBackend& b, Executable& exe, uint32_t n = 10000) {
    std::vector<float> x(n), y(n);
    for (uint32_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 97) - 40.0f;
      y[i] = static_cast<float>(i % 13);
    }
    Buffer bx = b.alloc(ScalarType::f32, n), by = b.alloc(ScalarType::f32, n);
    b.upload(bx, x.data());
    b.upload(by, y.data());
    b.run(exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
    std::vector<float> got(n);
    b.download(by, got.data());
    int wrong = 0;
    for (uint32_t i = 0; i < n; ++i) wrong += got[i] != 2 * x[i] + y[i];
    EXPECT_EQ(wrong, 0) << "elements of y = 2x + y wrong, e.g. y[1] = " << got[1] << ", expected " << 2 * x[1] + y[1];
    b.release(bx);
    b.release(by);
  }

  fs::path dir_;
  std::optional<ScopedEnv> env_dir_, env_switch_;
  std::unique_ptr<CudaBackend> backend_;
};

TEST_F(CudaDeviceTest, DescribesTheDevice) {
  EXPECT_EQ(backend_->name(), "cuda");
  EXPECT_NE(backend_->device_name().find(" (" + backend_->arch() + ")"), std::string::npos);
  EXPECT_EQ(backend_->arch(), arch_for(backend_->compute_capability() / 10, backend_->compute_capability() % 10));
  EXPECT_GT(backend_->multiprocessors(), 0);
  EXPECT_NE(backend_->stream(), nullptr);
  EXPECT_NE(backend_->context(), nullptr);
  const Target& t = backend_->target();
  EXPECT_EQ(t.backend, "cuda");
  EXPECT_EQ(t.name, backend_->arch());
  EXPECT_EQ(t.multiprocessors, static_cast<uint32_t>(backend_->multiprocessors()));
  EXPECT_EQ(t.simd_width, 32u);
  EXPECT_EQ(t.max_threads_per_threadgroup, 1024u);
  EXPECT_EQ(t.max_grid[1], 65535u);
  EXPECT_GE(t.shared_memory_per_threadgroup, 48u * 1024);
  EXPECT_GE(t.max_threads_per_multiprocessor, 1024u);
  EXPECT_GT(t.resident_threadgroups(256), 0u);
  std::cout << "[ target   ] " << t.describe() << "\n";
}

TEST_F(CudaDeviceTest, BuffersRoundTrip) {
  std::vector<float> v(1 << 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  Buffer a = upload(v);
  EXPECT_EQ(a.owner, backend_.get());
  EXPECT_NE(a.handle, 0u);
  EXPECT_EQ(download<float>(a), v);

  Buffer b = backend_->alloc(ScalarType::f32, v.size());
  backend_->copy(b, a);
  EXPECT_EQ(download<float>(b), v);
  backend_->fill_bytes(b, 0xff);
  for (uint32_t word : download<uint32_t>(b)) ASSERT_EQ(word, 0xffffffffu);

  Buffer h = backend_->alloc(ScalarType::bf16, 3);
  EXPECT_EQ(h.bytes(), 6u);
  std::vector<uint16_t> bits = {f32_to_bf16_bits(1.5f), f32_to_bf16_bits(-2.0f), 0x7fc0};
  backend_->upload(h, bits.data());
  EXPECT_EQ(download<uint16_t>(h), bits);

  Buffer empty = backend_->alloc(ScalarType::f32, 0);
  backend_->upload(empty, nullptr);
  backend_->download(empty, nullptr);

  for (Buffer* x : {&a, &b, &h, &empty}) backend_->release(*x);
  EXPECT_EQ(a.handle, 0u);
  EXPECT_EQ(a.owner, nullptr);

  Buffer foreign;
  foreign.count = 4;
  foreign.owner = reinterpret_cast<Backend*>(&foreign);
  EXPECT_THROW(backend_->upload(foreign, v.data()), Error);
  EXPECT_THROW(backend_->release(foreign), Error);
}

TEST_F(CudaDeviceTest, RunsAHandWrittenKernel) {
  auto exe = backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  check_scale_add(*backend_, *exe);
  check_scale_add(*backend_, *exe, 1);  // a partial threadgroup
  backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  EXPECT_EQ(backend_->cache_stats().compiles, 1u) << "compiled once";
}

TEST_F(CudaDeviceTest, GridAndThreadgroupMapToBlocks) {
  auto exe =
      backend_->prepare_source(kWhere, "where", {{"out", ir::ParamKind::Tensor, ScalarType::u32, ir::Role::Out}});
  Geometry g{{3, 2, 4}, 96};
  Buffer out = backend_->alloc(ScalarType::u32, g.threadgroups() * g.tpg);
  backend_->fill_bytes(out, 0xff);
  backend_->run(*exe, g, {&out}, {0});
  std::vector<uint32_t> got = download<uint32_t>(out);
  size_t i = 0;
  for (uint32_t z = 0; z < 4; ++z)
    for (uint32_t y = 0; y < 2; ++y)
      for (uint32_t x = 0; x < 3; ++x)
        for (uint32_t t = 0; t < 96; ++t, ++i) ASSERT_EQ(got[i], x | y << 8 | z << 16 | t << 24) << "element " << i;
  backend_->release(out);
}

TEST_F(CudaDeviceTest, ConstexprsAreU32InParameterOrder) {
  auto exe = backend_->prepare_source(kConstexprs, "constexprs",
                                      {{"a", ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In},
                                       {"out", ir::ParamKind::Tensor, ScalarType::u32, ir::Role::Out},
                                       {"b", ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In}});
  Buffer out = backend_->alloc(ScalarType::u32, 2);
  backend_->run(*exe, {{1, 1, 1}, 1}, {nullptr, &out, nullptr}, {0xdeadbeef, 0, 7});
  EXPECT_EQ(download<uint32_t>(out), (std::vector<uint32_t>{0xdeadbeef, 7}));
  backend_->release(out);
}

TEST_F(CudaDeviceTest, RunChecksItsArguments) {
  auto exe = backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  Buffer x = backend_->alloc(ScalarType::f32, 16), y = backend_->alloc(ScalarType::f32, 16);
  Buffer h = backend_->alloc(ScalarType::f16, 16);
  Buffer stray;
  stray.count = 16;
  auto message = [&](const std::vector<Buffer*>& t, const std::vector<uint64_t>& c) -> std::string {
    try {
      backend_->run(*exe, cover(16), t, c);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(message({&x, &y}, {0, 0}).find("3 parameters"), std::string::npos);
  EXPECT_NE(message({&x, nullptr, nullptr}, {0, 0, 16}).find("parameter y"), std::string::npos);
  EXPECT_NE(message({&x, &h, nullptr}, {0, 0, 16}).find("got f16"), std::string::npos);
  EXPECT_NE(message({&stray, &y, nullptr}, {0, 0, 16}).find("an unallocated buffer"), std::string::npos);
  CudaBackend other;
  Buffer theirs_x = other.alloc(ScalarType::f32, 16);
  EXPECT_NE(message({&theirs_x, &y, nullptr}, {0, 0, 16}).find("another backend's buffer"), std::string::npos);
  other.release(theirs_x);
  // A launch the device refuses names the kernel and the geometry; the context stays usable.
  std::string refused;
  try {
    backend_->run(*exe, {{1, 1, 1}, 4096}, {&x, &y, nullptr}, {0, 0, 16});
  } catch (const Error& e) {
    refused = e.what();
  }
  EXPECT_NE(refused.find("cuLaunchKernel of scale_add (grid 1x1x1, 4096 threads"), std::string::npos) << refused;
  EXPECT_NE(refused.find("CUDA_ERROR_"), std::string::npos) << refused;
  check_scale_add(*backend_, *exe);
  // An executable from another backend is refused.
  auto theirs = other.prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  EXPECT_THROW(backend_->run(*theirs, cover(16), {&x, &y, nullptr}, {0, 0, 16}), Error);
  for (Buffer* b : {&x, &y, &h}) backend_->release(*b);
}

TEST_F(CudaDeviceTest, GraphCaptureReplays) {
  auto exe = backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  const uint32_t n = 4096;
  std::vector<float> x(n), zeros(n, 0.0f);
  for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 50);
  Buffer bx = upload(x), by = upload(zeros);
  backend_->synchronize();
  CudaGraph graph = backend_->capture([&] {
    for (int i = 0; i < 5; ++i) backend_->run(*exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
  });
  EXPECT_EQ(download<float>(by), zeros) << "capturing runs nothing";
  for (int r = 0; r < 3; ++r) graph.replay();
  std::vector<float> got = download<float>(by);
  int wrong = 0;
  for (uint32_t i = 0; i < n; ++i) wrong += got[i] != 30 * x[i];
  EXPECT_EQ(wrong, 0) << "3 replays of 5 launches of y += 2x; y[1] = " << got[1];
  // The graph holds the buffers, not their contents.
  std::vector<float> ones(n, 1.0f);
  backend_->upload(bx, ones.data());
  backend_->upload(by, zeros.data());
  graph.replay();
  EXPECT_EQ(download<float>(by), std::vector<float>(n, 10.0f));
  // A throw inside the capture ends it; the stream works after.
  EXPECT_THROW(backend_->capture([] { throw Error("inside capture"); }), Error);
  check_scale_add(*backend_, *exe);
  backend_->release(bx);
  backend_->release(by);
}

TEST_F(CudaDeviceTest, TimesWithEventsAndComparesWithRawLaunches) {
  auto exe = backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  const uint32_t n = 256;
  Buffer bx = upload(std::vector<float>(n, 1.0f)), by = upload(std::vector<float>(n, 0.0f));
  const int launches = 2000;
  auto host_us = [&](const std::function<void()>& launch) {
    backend_->synchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < launches; ++i) launch();
    auto t1 = std::chrono::steady_clock::now();
    backend_->synchronize();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / launches;
  };
  std::vector<Buffer*> tensors = {&bx, &by, nullptr};
  std::vector<uint64_t> constexprs = {0, 0, n};
  double run_us = host_us([&] { backend_->run(*exe, cover(n), tensors, constexprs); });
  CUfunction f = CudaBackend::cu_function(*exe);
  CUdeviceptr px = bx.handle, py = by.handle;
  unsigned pn = n;
  void* args[] = {&px, &py, &pn};
  double raw_us = host_us([&] { backend_->launch_raw(f, cover(n), args); });
  std::cout << "[ timing   ] host time per launch: run() " << run_us << " us, raw cuLaunchKernel " << raw_us << " us\n";
  EXPECT_EQ(download<float>(by), std::vector<float>(n, 2.0f * 2 * launches)) << "raw launches ran the kernel";

  float ms = backend_->time_ms([&] {
    for (int i = 0; i < 100; ++i) backend_->run(*exe, cover(n), tensors, constexprs);
  });
  EXPECT_GT(ms, 0.0f);
  CudaEvent a = backend_->create_event(), b = backend_->create_event();
  backend_->record(a);
  backend_->record(b);
  EXPECT_GE(backend_->elapsed_ms(a, b), 0.0f);
  backend_->release(bx);
  backend_->release(by);
}

TEST_F(CudaDeviceTest, MeasuresCopyBandwidth) {
  CopyBandwidth bw = backend_->measure_copy_bandwidth(64ull << 20, 5);
  std::cout << "[ timing   ] device-to-device copy of 64 MiB: " << bw.median_ms << " ms, " << bw.gb_per_s
            << " GB/s (read + write)\n";
  EXPECT_EQ(bw.bytes, 64ull << 20);
  EXPECT_GT(bw.gb_per_s, 10.0);
}

TEST_F(CudaDeviceTest, DiskCacheServesASecondBackendWithoutNvrtc) {
  auto exe = backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  CacheStats first = backend_->cache_stats();
  EXPECT_EQ(first.compiles, 1u);
  EXPECT_EQ(first.disk_writes, 1u);
  CudaBackend second;  // same MTILE_CACHE_DIR, as a second process would have
  auto again = second.prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  CacheStats s = second.cache_stats();
  EXPECT_EQ(s.compiles, 0u) << "NVRTC was called";
  EXPECT_EQ(s.disk_hits, 1u);
  check_scale_add(second, *again);
  // A different source is a different module.
  std::string changed = std::string(kScaleAdd) + "// changed\n";
  second.prepare_source(changed, "scale_add", kScaleAddParams);
  EXPECT_EQ(second.cache_stats().compiles, 1u);
}

// A cached module that passes the header check but that the driver refuses, or that is another
// kernel's, is removed and rebuilt with NVRTC, once, and the kernel still runs.
TEST_F(CudaDeviceTest, CachedModuleTheDriverRejectsIsRebuilt) {
  backend_->prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
  backend_->prepare_source(kWhere, "where", {{"out", ir::ParamKind::Tensor, ScalarType::u32, ir::Role::Out}});
  // Each entry's key is in its header (bytes 16..31).
  std::vector<CacheKey> keys;
  for (const auto& e : fs::directory_iterator(dir_)) {
    std::ifstream in(e.path(), std::ios::binary);
    char header[ModuleCache::kHeaderBytes] = {};
    in.read(header, sizeof header);
    CacheKey k;
    std::memcpy(&k.high, header + 16, 8);
    std::memcpy(&k.low, header + 24, 8);
    EXPECT_EQ(e.path().filename(), k.hex() + ".cubin");
    keys.push_back(k);
  }
  ASSERT_EQ(keys.size(), 2u);
  ModuleCache planter(CacheConfig{true, dir_});
  // Which is which: the module with the symbol scale_add in it.
  const std::string symbol = "scale_add";
  std::vector<char> first = *planter.read_file(keys[0]);
  bool first_is_scale_add = std::search(first.begin(), first.end(), symbol.begin(), symbol.end()) != first.end();
  const CacheKey scale_add = keys[first_is_scale_add ? 0 : 1], where = keys[first_is_scale_add ? 1 : 0];
  const std::vector<char> where_module = *planter.read_file(where);
  const std::vector<std::pair<std::string, std::vector<char>>> planted = {
      {"another kernel's module", where_module}, {"not a module at all", std::vector<char>(4096, 'x')}};
  for (const auto& [what, payload] : planted) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(planter.write_file(scale_add, payload));
    CudaBackend second;  // a fresh memory cache, as a second process would have
    auto exe = second.prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
    CacheStats s = second.cache_stats();
    EXPECT_EQ(s.disk_hits, 1u);
    EXPECT_EQ(s.rejected_payloads, 1u);
    EXPECT_EQ(s.compiles, 1u) << "rebuilt with NVRTC";
    check_scale_add(second, *exe);
    CudaBackend third;
    third.prepare_source(kScaleAdd, "scale_add", kScaleAddParams);
    EXPECT_EQ(third.cache_stats().compiles, 0u) << "the rebuilt module replaced the planted one";
  }
}

TEST_F(CudaDeviceTest, WrapsDeviceMemoryTheCallerOwnsAndChecksIt) {
  const uint32_t n = 5000;
  backend_->make_current();
  CUdeviceptr mine = 0;
  ASSERT_EQ(driver().cuMemAlloc_v2(&mine, 3 * n * sizeof(float) + 256), CUDA_SUCCESS);
  // Three tensors inside one allocation, as a framework's caching allocator hands them out.
  Buffer a = backend_->wrap(mine, ScalarType::f32, n), b = backend_->wrap(mine + 4 * n, ScalarType::f32, n),
         c = backend_->wrap(mine + 8 * n, ScalarType::f32, n);
  EXPECT_TRUE(a.borrowed());
  std::vector<float> va(n), vb(n);
  for (uint32_t i = 0; i < n; ++i) va[i] = 0.5f * i, vb[i] = 3.0f - i;
  backend_->upload(a, va.data());
  backend_->upload(b, vb.data());
  Context ctx;
  ctx.launch(*backend_, find_kernel("vector_add"), ScalarType::f32, {{"n", n}}, {&a, &b, &c, nullptr});
  std::vector<float> got = download<float>(c);
  int wrong = 0;
  for (uint32_t i = 0; i < n; ++i) wrong += got[i] != va[i] + vb[i];
  EXPECT_EQ(wrong, 0);
  auto error = [&](uint64_t address, uint64_t count) {
    try {
      backend_->wrap(address, ScalarType::f32, count);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error(mine + 8 * n, n + 100).find("runs past the end of its allocation"), std::string::npos)
      << error(mine + 8 * n, n + 100);
  std::vector<float> host(16);
  EXPECT_NE(error(reinterpret_cast<uint64_t>(host.data()), 16).find("is not memory the CUDA driver knows"),
            std::string::npos)
      << error(reinterpret_cast<uint64_t>(host.data()), 16);
  backend_->release(a);  // forgets it: the memory stays the caller's
  ASSERT_EQ(driver().cuMemFree_v2(mine), CUDA_SUCCESS);
  EXPECT_NE(error(mine, 16).find("is not memory the CUDA driver knows"), std::string::npos) << error(mine, 16);
}

TEST_F(CudaDeviceTest, LaunchesOnTheCallersStream) {
  backend_->make_current();
  CUstream theirs = nullptr;
  ASSERT_EQ(driver().cuStreamCreate(&theirs, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  Stream s = backend_->wrap_stream(reinterpret_cast<uint64_t>(theirs));
  EXPECT_EQ(s.owner, backend_.get());
  const uint32_t n = 4096;
  std::vector<float> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 13);
  Buffer bx = upload(x), by = backend_->alloc(ScalarType::f32, n), bz = backend_->alloc(ScalarType::f32, n);
  backend_->synchronize();  // the uploads are on the backend's stream
  Context ctx;
  LaunchOptions opts;
  opts.stream = &s;
  ctx.launch(*backend_, find_kernel("vector_add"), ScalarType::f32, {{"n", n}}, {&bx, &bx, &bz, nullptr}, opts);
  ASSERT_EQ(driver().cuStreamSynchronize(theirs), CUDA_SUCCESS);
  std::vector<float> got = download<float>(bz);
  int wrong = 0;
  for (uint32_t i = 0; i < n; ++i) wrong += got[i] != 2 * x[i];
  EXPECT_EQ(wrong, 0);
  CudaBackend other(0);
  Stream foreign = other.default_stream();
  opts.stream = &foreign;
  EXPECT_THROW(
      ctx.launch(*backend_, find_kernel("vector_add"), ScalarType::f32, {{"n", n}}, {&bx, &bx, &bz, nullptr}, opts),
      Error);
  for (Buffer* b : {&bx, &by, &bz}) backend_->release(*b);
  driver().cuStreamDestroy_v2(theirs);
}

// ---------------------------------------------------------------------------------------------
// Kernels written in the DSL, through the code generator.

void dsl_scale_add(dsl::In<dsl::f32> x, dsl::InOut<dsl::f32> y, dsl::Constexpr n) {
  using namespace dsl;
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], load(x[i]) * 2.0f + load(y[i])); });
}

void dsl_double_bf16(dsl::In<dsl::bf16> x, dsl::Out<dsl::bf16> y, dsl::Constexpr n) {
  using namespace dsl;
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], (load(x[i]).cast<f32>() * 2.0f).cast<bf16>()); });
}

class CudaDslTest : public CudaDeviceTest {
 protected:
  void SetUp() override {
    CudaDeviceTest::SetUp();
    if (IsSkipped()) return;
  }
};

TEST_F(CudaDslTest, RunsATracedKernelEndToEnd) {
  auto def = dsl::define_kernel("dsl_scale_add", ir::Mode::Elementwise, {"x", "y", "n"}, &dsl_scale_add);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::f32), backend_->target());
  auto exe = backend_->prepare(f);
  check_scale_add(*backend_, *exe);
}

TEST_F(CudaDslTest, RunsABf16Kernel) {
  auto def =
      dsl::define_kernel("dsl_double_bf16", ir::Mode::Elementwise, {"x", "y", "n"}, &dsl_double_bf16, ScalarType::bf16);
  auto exe = backend_->prepare(passes::run_pipeline(def.trace(ScalarType::bf16), backend_->target()));
  const uint32_t n = 1000;
  std::vector<uint16_t> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = f32_to_bf16_bits(static_cast<float>(i) * 0.37f - 100.0f);
  Buffer bx = backend_->alloc(ScalarType::bf16, n), by = backend_->alloc(ScalarType::bf16, n);
  backend_->upload(bx, x.data());
  backend_->fill_bytes(by, 0xff);  // poison: every element must be written
  backend_->run(*exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
  std::vector<uint16_t> got = download<uint16_t>(by);
  int wrong = 0;
  for (uint32_t i = 0; i < n; ++i) wrong += got[i] != f32_to_bf16_bits(2.0f * bf16_bits_to_f32(x[i]));
  EXPECT_EQ(wrong, 0);
  backend_->release(bx);
  backend_->release(by);
}

// Generated kernels launch as programmatic dependents on sm_90+: a chain of in-place launches, each
// reading what the one before wrote, on the stream and in a graph, must give the stream's order's
// result; the same with MTILE_CUDA_PDL=0, and any other value of it is refused by name.
TEST_F(CudaDslTest, ProgrammaticLaunchesKeepTheStreamOrder) {
  EXPECT_EQ(backend_->programmatic_launches(), backend_->compute_capability() >= 90);
  auto def = dsl::define_kernel("dsl_scale_add", ir::Mode::Elementwise, {"x", "y", "n"}, &dsl_scale_add);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::f32), backend_->target());
  const uint32_t n = 1u << 22;  // long enough that a launch overlapping the one before would show
  std::vector<float> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 7);
  for (bool on : {true, false}) {
    backend_->set_programmatic_launches(on);
    auto exe = backend_->prepare(f);
    Buffer bx = upload(x), by = upload(std::vector<float>(n, 1.0f));
    for (int i = 0; i < 50; ++i) backend_->run(*exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
    CudaGraph graph = backend_->capture([&] {
      for (int i = 0; i < 25; ++i) backend_->run(*exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
    });
    graph.replay();
    graph.replay();
    std::vector<float> got = download<float>(by);
    int wrong = 0;
    for (uint32_t i = 0; i < n; ++i) wrong += got[i] != 1.0f + 200 * x[i];
    EXPECT_EQ(wrong, 0) << "100 launches of y += 2x, programmatic " << on << "; y[1] = " << got[1];
    backend_->release(bx);
    backend_->release(by);
  }
  backend_->set_programmatic_launches(true);
  {
    ScopedEnv off("MTILE_CUDA_PDL", "0");
    EXPECT_FALSE(CudaBackend().programmatic_launches());
  }
  ScopedEnv bad("MTILE_CUDA_PDL", "yes");
  try {
    CudaBackend b;
    ADD_FAILURE() << "MTILE_CUDA_PDL=yes was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MTILE_CUDA_PDL=yes"), std::string::npos) << e.what();
  }
}

// The benchmark's L2 flush reads its scratch and leaves it as it was.
TEST_F(CudaDeviceTest, EvictsL2ByReading) {
  const uint32_t words = 1u << 20;
  std::vector<uint32_t> v(words);
  for (uint32_t i = 0; i < words; ++i) v[i] = i * 2654435761u;
  Buffer scratch = backend_->alloc(ScalarType::u32, words);
  backend_->upload(scratch, v.data());
  backend_->evict_l2(scratch);
  EXPECT_EQ(download<uint32_t>(scratch), v);
  Buffer odd = backend_->alloc(ScalarType::u8, 100);
  EXPECT_THROW(backend_->evict_l2(odd), Error);
  CopyBandwidth bw = backend_->measure_copy_bandwidth(16ull << 20, 3, &scratch);
  EXPECT_GT(bw.gb_per_s, 10.0);
  backend_->release(scratch);
  backend_->release(odd);
}

TEST_F(CudaDslTest, GraphOfATracedKernelAndASecondBackendFromDisk) {
  auto def = dsl::define_kernel("dsl_scale_add", ir::Mode::Elementwise, {"x", "y", "n"}, &dsl_scale_add);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::f32), backend_->target());
  auto exe = backend_->prepare(f);
  const uint32_t n = 3000;
  std::vector<float> x(n);
  for (uint32_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 7);
  Buffer bx = upload(x), by = upload(std::vector<float>(n, 0.0f));
  CudaGraph graph = backend_->capture([&] {
    for (int i = 0; i < 4; ++i) backend_->run(*exe, cover(n), {&bx, &by, nullptr}, {0, 0, n});
  });
  graph.replay();
  graph.replay();
  std::vector<float> got = download<float>(by);
  int wrong = 0;
  for (uint32_t i = 0; i < n; ++i) wrong += got[i] != 16 * x[i];
  EXPECT_EQ(wrong, 0) << "2 replays of 4 launches of y += 2x";
  backend_->release(bx);
  backend_->release(by);

  CudaBackend second;
  auto again = second.prepare(f);
  EXPECT_EQ(second.cache_stats().compiles, 0u) << "NVRTC was called";
  EXPECT_EQ(second.cache_stats().disk_hits, 1u);
  check_scale_add(second, *again);
}

}  // namespace
}  // namespace mtile::cuda
