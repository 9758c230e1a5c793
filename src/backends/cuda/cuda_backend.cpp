// CudaBackend: one device, its primary context, one non-blocking stream, and the modules it loaded.
#include "backends/cuda/cuda_backend.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <array>

#if MTILE_CUDA_HAVE_CODEGEN
#include "codegen/codegen.hpp"
#endif

namespace mtile::cuda {
namespace {

constexpr size_t kMaxParams = 64;

// The generated source of `f` and its kernel symbol.
std::string generate(const ir::Function& f, std::string* entry) {
#if MTILE_CUDA_HAVE_CODEGEN
  *entry = codegen::cuda_entry_name(f);
  return codegen::emit_cuda(f);
#else
  (void)entry;
  throw Error("kernel " + f.name + ": mtile was built without the CUDA code generator (mtile_codegen)");
#endif
}

std::string unavailable(const std::string& why) {
  return "CUDA backend unavailable: " + why;
}

}  // namespace

bool codegen_available() {
  return MTILE_CUDA_HAVE_CODEGEN;
}

NvrtcResult compile_for_arch(const ir::Function& lowered, const std::string& arch) {
  std::string entry;
  std::string src = generate(lowered, &entry);
  return nvrtc_compile(src, entry + ".cu", arch);
}

std::unique_ptr<Backend> make_cuda_backend() {
  return std::make_unique<CudaBackend>();
}

// ---------------------------------------------------------------------------------------------
// Events and graphs. Destructors ignore errors: they can't report them.

CudaEvent::~CudaEvent() {
  if (event_) driver().cuEventDestroy_v2(event_);
}

CudaGraph::CudaGraph(CudaGraph&& o) noexcept
    : backend_(o.backend_), graph_(std::exchange(o.graph_, nullptr)), exec_(std::exchange(o.exec_, nullptr)) {}

CudaGraph::~CudaGraph() {
  if (exec_) driver().cuGraphExecDestroy(exec_);
  if (graph_) driver().cuGraphDestroy(graph_);
}

void CudaGraph::replay() {
  backend_->make_current();
  MTILE_CU(cuGraphLaunch, exec_, backend_->stream());
}

// ---------------------------------------------------------------------------------------------
// Device, context and stream.

CudaBackend::CudaBackend(int ordinal, CacheConfig cache) : ordinal_(ordinal), cache_(std::move(cache)) {
  std::string why;
  if (!driver_available(&why)) throw Error(unavailable(why));
  api_ = &driver();
  int count = 0;
  MTILE_CU(cuDeviceGetCount, &count);
  if (count == 0) throw Error(unavailable("the driver reports no CUDA device"));
  if (ordinal < 0 || ordinal >= count)
    throw Error(unavailable(fmt::format("there is no device {} (this machine has {})", ordinal, count)));
  if (!nvrtc_available(&why)) throw Error(unavailable(why));
  nvrtc_version_ = nvrtc_version();

  MTILE_CU(cuDeviceGet, &device_, ordinal);
  char name[256] = {};
  MTILE_CU(cuDeviceGetName, name, static_cast<int>(sizeof name - 1), device_);
  device_name_ = name;
  MTILE_CU(cuDeviceGetAttribute, &cc_major_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_);
  MTILE_CU(cuDeviceGetAttribute, &cc_minor_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device_);
  MTILE_CU(cuDeviceGetAttribute, &multiprocessors_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device_);
  arch_ = arch_for(cc_major_, cc_minor_);

  // The primary context is the one the CUDA runtime (and so PyTorch) uses: buffers and streams
  // pass between them.
  MTILE_CU(cuDevicePrimaryCtxRetain, &context_, device_);
  try {
    make_current();
    // Non-blocking: no implicit ordering with the legacy default stream, which graph capture forbids.
    MTILE_CU(cuStreamCreate, &stream_, CU_STREAM_NON_BLOCKING);
  } catch (...) {
    api_->cuDevicePrimaryCtxRelease_v2(device_);
    throw;
  }
}

CudaBackend::~CudaBackend() {
  // Errors are ignored: a destructor can't report them (a sticky error would repeat anyway).
  api_->cuCtxSetCurrent(context_);
  api_->cuStreamSynchronize(stream_);
  for (auto& [key, exe] : by_key_) api_->cuModuleUnload(exe->module);
  api_->cuStreamDestroy_v2(stream_);
  api_->cuCtxSetCurrent(nullptr);
  api_->cuDevicePrimaryCtxRelease_v2(device_);
}

void CudaBackend::make_current() const {
  // The current context is per thread and other code (PyTorch, another backend) may change it.
  CUcontext current = nullptr;
  check(api_->cuCtxGetCurrent(&current), "cuCtxGetCurrent");
  if (current != context_) check(api_->cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

std::string CudaBackend::device_name() const {
  return fmt::format("{} ({})", device_name_, arch_);
}

void CudaBackend::synchronize() {
  make_current();
  MTILE_CU(cuStreamSynchronize, stream_);
}

// ---------------------------------------------------------------------------------------------
// Buffers.

void CudaBackend::check_owned(const Buffer& b, const char* what) const {
  if (b.owner != this)
    throw Error(fmt::format("cuda {}: the buffer ({} x {}) belongs to {}", what, b.count, type_name(b.elem),
                            b.owner ? "another backend" : "no backend (not allocated)"));
}

Buffer CudaBackend::alloc(ScalarType elem, uint64_t count) {
  Buffer b;
  b.elem = elem;
  b.count = count;
  b.owner = this;
  if (b.bytes() == 0) return b;
  make_current();
  CUdeviceptr ptr = 0;
  CUresult r = api_->cuMemAlloc_v2(&ptr, b.bytes());
  if (r != CUDA_SUCCESS)
    throw Error(fmt::format("cuMemAlloc_v2 of {} bytes ({} x {}) failed: {}", b.bytes(), count, type_name(elem),
                            result_text(r)));
  b.handle = ptr;
  return b;
}

void CudaBackend::release(Buffer& b) {
  if (!b.owner && !b.handle) return;
  check_owned(b, "release");
  if (b.handle) {
    make_current();
    MTILE_CU(cuMemFree_v2, b.handle);
  }
  b = Buffer{};
}

// From pageable memory the driver stages the data before returning, so `host` may be reused at
// once; page-locked memory is read later, in stream order.
void CudaBackend::upload(Buffer& dst, const void* host) {
  check_owned(dst, "upload");
  if (dst.bytes() == 0) return;
  if (!host) throw Error("cuda upload: the host pointer is null");
  make_current();
  MTILE_CU(cuMemcpyHtoDAsync_v2, dst.handle, host, dst.bytes(), stream_);
}

void CudaBackend::download(const Buffer& src, void* host) {
  check_owned(src, "download");
  if (src.bytes() == 0) return;
  if (!host) throw Error("cuda download: the host pointer is null");
  make_current();
  MTILE_CU(cuMemcpyDtoHAsync_v2, host, src.handle, src.bytes(), stream_);
  MTILE_CU(cuStreamSynchronize, stream_);
}

void CudaBackend::fill_bytes(Buffer& b, uint8_t value) {
  check_owned(b, "fill_bytes");
  if (b.bytes() == 0) return;
  make_current();
  MTILE_CU(cuMemsetD8Async, b.handle, value, b.bytes(), stream_);
}

void CudaBackend::copy(Buffer& dst, const Buffer& src) {
  check_owned(dst, "copy");
  check_owned(src, "copy");
  if (dst.bytes() != src.bytes())
    throw Error(fmt::format("cuda copy: {} bytes into a buffer of {}", src.bytes(), dst.bytes()));
  if (dst.bytes() == 0) return;
  make_current();
  MTILE_CU(cuMemcpyDtoDAsync_v2, dst.handle, src.handle, dst.bytes(), stream_);
}

// ---------------------------------------------------------------------------------------------
// Modules.

std::shared_ptr<Executable> CudaBackend::prepare(const ir::Function& lowered) {
  uint64_t hash = ir::structural_hash(lowered);
  {
    std::lock_guard lock(mutex_);
    if (auto it = by_ir_hash_.find(hash); it != by_ir_hash_.end()) return it->second;
  }
  std::string entry;
  std::string src = generate(lowered, &entry);
  CacheKeyInputs key;
  key.ir_hash = hash;
  key.dtype = lowered.dtype;
  auto exe = load(src, entry, lowered.params, key);
  std::lock_guard lock(mutex_);
  return by_ir_hash_.emplace(hash, exe).first->second;
}

std::shared_ptr<Executable> CudaBackend::prepare_source(const std::string& src, const std::string& entry,
                                                        const std::vector<ir::Param>& params) {
  return load(src, entry, params, CacheKeyInputs{});
}

std::shared_ptr<CudaExecutable> CudaBackend::load(const std::string& src, const std::string& entry,
                                                  const std::vector<ir::Param>& params, const CacheKeyInputs& inputs) {
  if (params.size() > kMaxParams)
    throw Error(
        fmt::format("kernel {}: {} parameters, the CUDA backend takes at most {}", entry, params.size(), kMaxParams));
  CacheKeyInputs in = inputs;
  in.source_hash = XXH3_64bits(src.data(), src.size());
  in.entry = entry;
  in.arch = arch_;
  in.options = nvrtc_options(arch_);
  in.nvrtc_version = nvrtc_version_;
  CacheKey key = cache_key(in);
  {
    std::lock_guard lock(mutex_);
    if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  }
  ModuleCache::Payload cubin = cache_.get_or_build(key, [&] { return nvrtc_compile(src, entry + ".cu", arch_).cubin; });

  auto exe = std::make_shared<CudaExecutable>();
  exe->owner = this;
  exe->entry = entry;
  exe->params = params;
  make_current();
  CUresult r = api_->cuModuleLoadData(&exe->module, cubin->data());
  if (r != CUDA_SUCCESS)
    throw Error(fmt::format("cuModuleLoadData of kernel {} ({}, NVRTC {}, driver for CUDA {}) failed: {}", entry, arch_,
                            nvrtc_version_, driver_version(), result_text(r)));
  r = api_->cuModuleGetFunction(&exe->function, exe->module, entry.c_str());
  if (r != CUDA_SUCCESS) {
    api_->cuModuleUnload(exe->module);
    throw Error(fmt::format("cuModuleGetFunction({}) failed: {}", entry, result_text(r)));
  }
  std::lock_guard lock(mutex_);
  auto [it, inserted] = by_key_.emplace(key, exe);
  if (!inserted) api_->cuModuleUnload(exe->module);  // another thread loaded it meanwhile
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// Launches.

void CudaBackend::run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors,
                      const std::vector<uint32_t>& constexprs) {
  auto* ce = dynamic_cast<CudaExecutable*>(&exe);
  if (!ce || ce->owner != this) throw Error("cuda run: the executable was not prepared by this backend");
  const size_t n = ce->params.size();
  if (tensors.size() != n || constexprs.size() != n)
    throw Error(fmt::format("cuda run {}: {} parameters, but {} tensors and {} constexpr values", ce->entry, n,
                            tensors.size(), constexprs.size()));
  // Kernel ABI: a device pointer per tensor, an unsigned int per constexpr, in parameter order.
  std::array<CUdeviceptr, kMaxParams> pointers;
  std::array<uint32_t, kMaxParams> values;
  std::array<void*, kMaxParams> args;
  for (size_t i = 0; i < n; ++i) {
    const ir::Param& p = ce->params[i];
    if (p.kind == ir::ParamKind::Constexpr) {
      values[i] = constexprs[i];
      args[i] = &values[i];
      continue;
    }
    const Buffer* b = tensors[i];
    if (!b || b->owner != this || b->elem != p.elem)
      throw Error(fmt::format("cuda run {}: parameter {} needs a {} buffer of this backend, got {}", ce->entry, p.name,
                              type_name(p.elem),
                              !b                 ? "none"
                              : !b->owner        ? "an unallocated buffer"
                              : b->owner != this ? "another backend's buffer"
                                                 : type_name(b->elem)));
    pointers[i] = b->handle;
    args[i] = &pointers[i];
  }
  make_current();
  CUresult r = api_->cuLaunchKernel(ce->function, g.grid[0], g.grid[1], g.grid[2], g.tpg, 1, 1, 0, stream_, args.data(),
                                    nullptr);
  if (r != CUDA_SUCCESS)
    throw Error(fmt::format("cuLaunchKernel of {} (grid {}x{}x{}, {} threads per threadgroup) failed: {}", ce->entry,
                            g.grid[0], g.grid[1], g.grid[2], g.tpg, result_text(r)));
}

CUfunction CudaBackend::cu_function(const Executable& exe) {
  auto* ce = dynamic_cast<const CudaExecutable*>(&exe);
  if (!ce) throw Error("cu_function: not a CUDA executable");
  return ce->function;
}

// Nothing but the driver call: the calling thread must have this backend's context current
// (every other entry point makes it so).
void CudaBackend::launch_raw(CUfunction f, const Geometry& g, void** args) {
  check(api_->cuLaunchKernel(f, g.grid[0], g.grid[1], g.grid[2], g.tpg, 1, 1, 0, stream_, args, nullptr),
        "cuLaunchKernel");
}

CudaGraph CudaBackend::capture(const std::function<void()>& work) {
  make_current();
  // Thread-local mode: only this thread's unsafe calls (allocations, syncs) break the capture.
  MTILE_CU(cuStreamBeginCapture_v2, stream_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
  CUgraph graph = nullptr;
  try {
    work();
  } catch (...) {
    api_->cuStreamEndCapture(stream_, &graph);
    if (graph) api_->cuGraphDestroy(graph);
    throw;
  }
  MTILE_CU(cuStreamEndCapture, stream_, &graph);
  CUgraphExec exec = nullptr;
  CUresult r = api_->cuGraphInstantiateWithFlags(&exec, graph, 0);
  if (r != CUDA_SUCCESS) {
    api_->cuGraphDestroy(graph);
    check(r, "cuGraphInstantiateWithFlags");
  }
  return CudaGraph(*this, graph, exec);
}

// ---------------------------------------------------------------------------------------------
// Timing.

CudaEvent CudaBackend::create_event() {
  make_current();
  CUevent e = nullptr;
  MTILE_CU(cuEventCreate, &e, CU_EVENT_DEFAULT);
  return CudaEvent(e);
}

void CudaBackend::record(const CudaEvent& e) {
  make_current();
  MTILE_CU(cuEventRecord, e.get(), stream_);
}

float CudaBackend::elapsed_ms(const CudaEvent& start, const CudaEvent& end) {
  make_current();
  MTILE_CU(cuEventSynchronize, end.get());
  float ms = 0;
  MTILE_CU(cuEventElapsedTime, &ms, start.get(), end.get());
  return ms;
}

float CudaBackend::time_ms(const std::function<void()>& work) {
  CudaEvent start = create_event(), end = create_event();
  record(start);
  work();
  record(end);
  return elapsed_ms(start, end);
}

CopyBandwidth CudaBackend::measure_copy_bandwidth(uint64_t bytes, int repetitions) {
  if (bytes < 4 || repetitions < 1) throw Error("measure_copy_bandwidth: needs at least 4 bytes and 1 repetition");
  struct Owned {  // releases the buffer however this function ends
    CudaBackend& backend;
    Buffer buffer;
    ~Owned() {
      try {
        backend.release(buffer);
      } catch (...) {
      }
    }
  };
  Owned src{*this, alloc(ScalarType::u32, bytes / 4)}, dst{*this, alloc(ScalarType::u32, bytes / 4)};
  fill_bytes(src.buffer, 0x5a);  // touch both so no first-use cost lands in a timed copy
  fill_bytes(dst.buffer, 0);
  for (int i = 0; i < 2; ++i) copy(dst.buffer, src.buffer);
  std::vector<float> times;
  for (int i = 0; i < repetitions; ++i) times.push_back(time_ms([&] { copy(dst.buffer, src.buffer); }));
  std::sort(times.begin(), times.end());
  CopyBandwidth out;
  out.bytes = src.buffer.bytes();
  out.repetitions = repetitions;
  out.median_ms = times[times.size() / 2];
  out.gb_per_s = 2.0 * static_cast<double>(out.bytes) / (out.median_ms * 1e-3) / 1e9;
  return out;
}

}  // namespace mtile::cuda
