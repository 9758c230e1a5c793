// CudaBackend: one device, its primary context, one non-blocking stream, and the modules it loaded.
#include "backends/cuda/cuda_backend.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "codegen/codegen.hpp"

namespace mtile::cuda {
namespace {

constexpr size_t kMaxParams = 64;
constexpr size_t kMaxTileMaps = 8;  // copy_tile tensor maps, passed after the parameters

// The SM version an arch names ("sm_90a" -> 90), 0 where it names none.
int sm_version(const std::string& arch) {
  if (arch.rfind("sm_", 0) != 0) return 0;
  int v = 0;
  for (size_t i = 3; i < arch.size() && std::isdigit(static_cast<unsigned char>(arch[i])); ++i)
    v = v * 10 + (arch[i] - '0');
  return v;
}

// What the generated code needs of the arch, refused here rather than by NVRTC: Mma is mma.sync
// m16n8k16 with bf16/f16 inputs, which tensor cores have from sm_80 on; LoadMatrix is ldmatrix
// (sm_75); MmaAsync and its fence and wait are wgmma (sm_90a only); mbarrier waits are
// mbarrier.try_wait (sm_90); CopyTile is cp.async.bulk.tensor (sm_90).
void check_arch(const ir::Function& f, const std::string& arch) {
  bool mma = false, load_matrix = false, mma_async = false, mbarrier = false, tile = false;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    mma |= in.op == ir::Op::Mma;
    load_matrix |= in.op == ir::Op::LoadMatrix;
    mma_async |= in.op == ir::Op::MmaAsync || in.op == ir::Op::MmaFence || in.op == ir::Op::MmaWait;
    mbarrier |= ir::is_mbarrier(in.op);
    tile |= in.op == ir::Op::CopyTile;
  });
  if (tile && sm_version(arch) < 90)
    throw Error(
        fmt::format("kernel {}<{}>: copy_tile (the tensor memory accelerator, cp.async.bulk.tensor) needs "
                    "sm_90 or newer, and the CUDA code is for {}: a kernel's rule uses it only where the "
                    "target has tile_copy",
                    f.name, type_name(f.dtype), arch));
  if (mbarrier && sm_version(arch) < 90)
    throw Error(
        fmt::format("kernel {}<{}>: mbarriers (mbarrier.try_wait) need sm_90 or newer, and the CUDA code is for {}: a "
                    "kernel's rule uses them only where the target has async_mma",
                    f.name, type_name(f.dtype), arch));
  if (mma_async && arch != "sm_90a")
    throw Error(
        fmt::format("kernel {}<{}>: mma_async (wgmma) exists on sm_90a only, and the CUDA code is for {}: a "
                    "kernel's rule picks mma where the target has no async_mma",
                    f.name, type_name(f.dtype), arch));
  if (mma && sm_version(arch) < 80)
    throw Error(
        fmt::format("kernel {}<{}>: mma (mma.sync m16n8k16 on bf16/f16 tensor cores) needs sm_80 or newer, "
                    "and the CUDA code is for {}",
                    f.name, type_name(f.dtype), arch));
  if (load_matrix && sm_version(arch) < 75)
    throw Error(fmt::format("kernel {}<{}>: load_matrix (ldmatrix) needs sm_75 or newer, and the CUDA code is for {}",
                            f.name, type_name(f.dtype), arch));
}

// The generated source of `f` for `arch` and its kernel symbol.
std::string generate(const ir::Function& f, const std::string& arch, std::string* entry) {
  check_arch(f, arch);
  *entry = codegen::cuda_entry_name(f);
  return codegen::emit_cuda(f);
}

std::string unavailable(const std::string& why) {
  return "CUDA backend unavailable: " + why;
}

}  // namespace

NvrtcResult compile_for_arch(const ir::Function& lowered, const std::string& arch) {
  std::string entry;
  std::string src = generate(lowered, arch, &entry);
  return nvrtc_compile(src, entry + ".cu", arch);
}

std::unique_ptr<Backend> make_cuda_backend(int ordinal) {
  return std::make_unique<CudaBackend>(ordinal);
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

DeviceContext::~DeviceContext() {
  if (context) api->cuDevicePrimaryCtxRelease_v2(device);
}

void DeviceContext::make_current() const {
  CUcontext current = nullptr;
  check(api->cuCtxGetCurrent(&current), "cuCtxGetCurrent");
  if (current != context) check(api->cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

CudaExecutable::~CudaExecutable() {
  if (module && device) {
    device->api->cuCtxSetCurrent(device->context);  // errors ignored: a destructor can't report them
    device->api->cuModuleUnload(module);
  }
}

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

  auto dev = std::make_shared<DeviceContext>();
  dev->api = api_;
  MTILE_CU(cuDeviceGet, &dev->device, ordinal);
  char name[256] = {};
  MTILE_CU(cuDeviceGetName, name, static_cast<int>(sizeof name - 1), dev->device);
  device_name_ = name;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    MTILE_CU(cuDeviceGetAttribute, &v, a, dev->device);
    return v;
  };
  cc_major_ = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  cc_minor_ = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  arch_ = arch_for(cc_major_, cc_minor_);
  target_.backend = "cuda";
  target_.name = arch_;
  target_.device = device_name_;
  target_.simd_width = static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE));
  target_.max_threads_per_threadgroup = static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK));
  target_.max_grid = {static_cast<uint64_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X)),
                      static_cast<uint64_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y)),
                      static_cast<uint64_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z))};
  target_.max_vector_bytes = 16;   // ld/st.global.v4.b32
  target_.buffer_alignment = 256;  // cuMemAlloc's alignment; wrapped memory is checked per access width
  // With the opt-in every launch of a kernel past 48 KiB makes (cuFuncSetAttribute in prepare).
  target_.shared_memory_per_threadgroup =
      static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
  target_.multiprocessors = static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
  target_.async_mma = arch_ == "sm_90a";  // wgmma
  target_.async_copy = cc_major_ >= 8;    // cp.async
  target_.tile_copy = cc_major_ >= 9;     // TMA
  const std::string pdl = std::getenv("MTILE_CUDA_PDL") ? std::getenv("MTILE_CUDA_PDL") : "";
  if (!pdl.empty() && pdl != "0" && pdl != "1")
    throw Error(
        fmt::format("MTILE_CUDA_PDL={}: expected 0 (plain launches) or 1 (programmatic dependent launches "
                    "on sm_90 and newer, the default)",
                    pdl));
  set_programmatic_launches(pdl != "0");
  target_.max_threads_per_multiprocessor =
      static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR));
  target_.max_threadgroups_per_multiprocessor =
      static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR));
  target_.registers_per_multiprocessor =
      static_cast<uint32_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR));

  // The primary context is the one the CUDA runtime (and so PyTorch) uses: buffers and streams
  // pass between them.
  MTILE_CU(cuDevicePrimaryCtxRetain, &dev->context, dev->device);
  device_ = std::move(dev);
  make_current();
  // Non-blocking: no implicit ordering with the legacy default stream, which graph capture forbids.
  MTILE_CU(cuStreamCreate, &stream_, CU_STREAM_NON_BLOCKING);
}

CudaBackend::~CudaBackend() {
  // Errors are ignored: a destructor can't report them (a sticky error would repeat anyway).
  // Loaded modules are unloaded by their executables, which keep the context alive. Symmetric
  // memory this backend is a rank of goes with it (the other ranks' views are forgotten).
  std::map<CUdeviceptr, std::shared_ptr<SymmetricAllocation>> symmetric;
  {
    std::lock_guard lock(symmetric_mu_);
    symmetric = symmetric_;
  }
  for (auto& [base, a] : symmetric)
    if (!a->released.exchange(true)) free_symmetric(a, true);
  api_->cuCtxSetCurrent(device_->context);
  api_->cuStreamSynchronize(stream_);
  api_->cuStreamDestroy_v2(stream_);
}

void CudaBackend::make_current() const {
  device_->make_current();
}

std::string CudaBackend::device_name() const {
  return fmt::format("{} ({})", device_name_, arch_);
}

void CudaBackend::synchronize() {
  make_current();
  MTILE_CU(cuStreamSynchronize, stream_);
}

Stream CudaBackend::default_stream() {
  return Stream{reinterpret_cast<uint64_t>(stream_), this};
}

Stream CudaBackend::wrap_stream(uint64_t native) {
  if (native == 0) return Stream{0, this};  // the legacy default stream of the current context
  make_current();
  CUcontext ctx = nullptr;
  CUresult r = api_->cuStreamGetCtx(reinterpret_cast<CUstream>(native), &ctx);
  if (r != CUDA_SUCCESS)
    throw Error(fmt::format("cuda wrap_stream: 0x{:x} is not a stream the driver knows: {}", native, result_text(r)));
  if (ctx != device_->context)
    throw Error(fmt::format("cuda wrap_stream: stream 0x{:x} belongs to another context than device {}'s primary one",
                            native, ordinal_));
  return Stream{native, this};
}

// ---------------------------------------------------------------------------------------------
// Buffers.

Buffer CudaBackend::alloc(ScalarType elem, uint64_t count) {
  Buffer b;
  b.elem = elem;
  b.count = count;
  b.owner = this;
  b.id = track_allocation();
  if (b.bytes() == 0) return b;
  make_current();
  CUdeviceptr ptr = 0;
  CUresult r = api_->cuMemAlloc_v2(&ptr, b.bytes());
  if (r != CUDA_SUCCESS) {
    forget_allocation(b.id);
    size_t free = 0, total = 0;
    api_->cuMemGetInfo_v2(&free, &total);
    throw DeviceError(fmt::format("cuda: can't allocate {} bytes ({} x {}) on device {} ({} of {} bytes free): {}",
                                  b.bytes(), count, type_name(elem), ordinal_, free, total, result_text(r)));
  }
  b.handle = ptr;
  return b;
}

Buffer CudaBackend::wrap(uint64_t address, ScalarType elem, uint64_t count) {
  Buffer b{elem, count, address, this, 0};
  if (b.bytes() == 0) return b;
  make_current();
  auto fail = [&](const std::string& why) {
    throw Error(fmt::format("cuda wrap: 0x{:x} ({} x {}) {}", address, count, type_name(elem), why));
  };
  // One driver call a tensor (launches from Python wrap every tensor every call). The device is
  // read from the ordinal, and the context compared only where the memory has one: stream-ordered
  // (cudaMallocAsync) and virtual-memory (cuMemMap) allocations have none.
  unsigned type = 0;
  CUcontext ctx = nullptr;
  int ordinal = -1;
  CUdeviceptr start = 0;
  size_t size = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                 CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  void* values[] = {&type, &ctx, &ordinal, &start, &size};
  CUresult r = api_->cuPointerGetAttributes(5, attrs, values, address);
  if (r != CUDA_SUCCESS) fail("can't be queried: " + result_text(r));
  // Memory the driver does not know reads as type 0 (a host pointer, or freed).
  if (type == 0) fail("is not memory the CUDA driver knows (a host pointer, or freed)");
  if (type != CU_MEMORYTYPE_DEVICE) fail("is not device memory (host or managed memory is not taken)");
  if (ordinal != ordinal_) fail(fmt::format("belongs to device {}, not device {}", ordinal, ordinal_));
  if (ctx != nullptr && ctx != device_->context)
    fail(fmt::format("belongs to another context of device {} than its primary one", ordinal_));
  // A range the driver does not report (size 0) is not checked.
  if (size != 0 && address + b.bytes() > start + size)
    fail(fmt::format("runs past the end of its allocation ({} bytes from 0x{:x})", size, start));
  return b;
}

void CudaBackend::release(Buffer& b) {
  check_usable(b, "cuda release");
  if (is_symmetric_view(b))
    throw Error(
        fmt::format("cuda release: the buffer ({} x {} at 0x{:x}) is a view of symmetric memory: release it "
                    "with release_symmetric",
                    b.count, type_name(b.elem), b.handle));
  if (b.id) {
    forget_allocation(b.id);
    if (b.handle) {
      make_current();
      MTILE_CU(cuMemFree_v2, b.handle);
    }
  }
  b = Buffer{};
}

// From pageable memory the driver stages the data before returning, so `host` may be reused at
// once; page-locked memory is read later, in stream order.
void CudaBackend::upload(Buffer& dst, const void* host) {
  check_usable(dst, "cuda upload");
  if (dst.bytes() == 0) return;
  if (!host) throw Error("cuda upload: the host pointer is null");
  make_current();
  MTILE_CU(cuMemcpyHtoDAsync_v2, dst.handle, host, dst.bytes(), stream_);
}

void CudaBackend::download(const Buffer& src, void* host) {
  check_usable(src, "cuda download");
  if (src.bytes() == 0) return;
  if (!host) throw Error("cuda download: the host pointer is null");
  make_current();
  MTILE_CU(cuMemcpyDtoHAsync_v2, host, src.handle, src.bytes(), stream_);
  MTILE_CU(cuStreamSynchronize, stream_);
}

void CudaBackend::fill_bytes(Buffer& b, uint8_t value) {
  check_usable(b, "cuda fill_bytes");
  if (b.bytes() == 0) return;
  make_current();
  MTILE_CU(cuMemsetD8Async, b.handle, value, b.bytes(), stream_);
}

void CudaBackend::copy(Buffer& dst, const Buffer& src) {
  check_usable(dst, "cuda copy");
  check_usable(src, "cuda copy");
  if (dst.bytes() != src.bytes())
    throw Error(fmt::format("cuda copy: {} bytes into a buffer of {}", src.bytes(), dst.bytes()));
  if (dst.bytes() == 0) return;
  make_current();
  MTILE_CU(cuMemcpyDtoDAsync_v2, dst.handle, src.handle, dst.bytes(), stream_);
}

// ---------------------------------------------------------------------------------------------
// Modules.

std::shared_ptr<Executable> CudaBackend::prepare(const ir::Function& lowered) {
  std::string entry;
  std::string src = generate(lowered, arch_, &entry);
  CacheKeyInputs key;
  key.ir_hash = ir::structural_hash(lowered);
  key.dtype = lowered.dtype;
  auto exe = load(src, entry, lowered.params, key, true);
  exe->tpg = lowered.tpg;
  exe->generated = true;
  exe->maps = codegen::tile_maps(lowered);
  if (exe->maps.size() > kMaxTileMaps)
    throw Error(fmt::format("kernel {}: {} distinct copy_tile views, the CUDA backend passes at most {} tensor maps",
                            entry, exe->maps.size(), kMaxTileMaps));
  // Arrays past the static 48 KiB are one dynamic block, which the function must be allowed
  // (up to the device's opt-in limit: the contract has checked the arrays against it).
  if (uint64_t bytes = codegen::cuda_dynamic_shared_bytes(lowered)) {
    exe->shared_bytes = static_cast<uint32_t>(bytes);
    make_current();
    check(api_->cuFuncSetAttribute(exe->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                   static_cast<int>(bytes)),
          fmt::format("cuFuncSetAttribute({}, max dynamic shared memory {} bytes)", entry, bytes).c_str());
  }
  return exe;
}

std::shared_ptr<Executable> CudaBackend::prepare_source(const std::string& src, const std::string& entry,
                                                        const std::vector<ir::Param>& params) {
  return load(src, entry, params, CacheKeyInputs{}, false);
}

std::shared_ptr<CudaExecutable> CudaBackend::load(const std::string& src, const std::string& entry,
                                                  const std::vector<ir::Param>& params, const CacheKeyInputs& inputs,
                                                  bool generated) {
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
  auto build = [&] {
    try {
      return nvrtc_compile(src, entry + ".cu", arch_).cubin;
    } catch (const Error& e) {
      if (!generated) throw;
      throw InternalError(
          fmt::format("mtile generated CUDA that NVRTC rejects (an mtile bug; please report it): {}", e.what()));
    }
  };

  auto exe = std::make_shared<CudaExecutable>();
  exe->owner = this;
  exe->device = device_;
  exe->entry = entry;
  exe->params = params;
  // Loading is the cache's validation: a cached module that passed the header check but that the
  // driver refuses (or that lacks the entry) is removed and rebuilt with NVRTC, once.
  std::string failure;
  auto load_module = [&](const std::vector<char>& cubin) {
    // NVRTC makes ELF CUBINs. Anything else the driver would parse as PTX text, reading past the
    // payload's end for its terminating NUL.
    static constexpr char kElf[4] = {0x7f, 'E', 'L', 'F'};
    if (cubin.size() < sizeof kElf || std::memcmp(cubin.data(), kElf, sizeof kElf) != 0) {
      failure = "the payload is not a CUBIN (no ELF header)";
      return false;
    }
    make_current();
    CUresult r = api_->cuModuleLoadData(&exe->module, cubin.data());
    if (r != CUDA_SUCCESS) {
      exe->module = nullptr;
      failure = fmt::format("cuModuleLoadData failed: {}", result_text(r));
      return false;
    }
    r = api_->cuModuleGetFunction(&exe->function, exe->module, entry.c_str());
    if (r != CUDA_SUCCESS) {
      api_->cuModuleUnload(exe->module);
      exe->module = nullptr;
      failure = fmt::format("cuModuleGetFunction({}) failed: {}", entry, result_text(r));
      return false;
    }
    return true;
  };
  if (!cache_.get_or_build(key, build, load_module))
    throw DeviceError(
        fmt::format("kernel {}: the module NVRTC built for it ({}, NVRTC {}, driver for CUDA {}) does "
                    "not load: {}",
                    entry, arch_, nvrtc_version_, driver_version(), failure));
  return exe;
}

// ---------------------------------------------------------------------------------------------
// Launches.

void CudaBackend::run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors,
                      const std::vector<uint64_t>& values, const Stream* stream) {
  auto* ce = dynamic_cast<CudaExecutable*>(&exe);
  if (!ce || ce->owner != this) throw Error("cuda run: the executable was not prepared by this backend");
  const size_t n = ce->params.size();
  if (tensors.size() != n || values.size() != n)
    throw Error(fmt::format("cuda run {}: {} parameters, but {} tensors and {} values", ce->entry, n, tensors.size(),
                            values.size()));
  // Kernel ABI: a device pointer per tensor; a constexpr as unsigned int and a scalar as its type
  // (4 or 8 bytes, read from the low bytes of its 64-bit slot), in parameter order.
  std::array<uint64_t, kMaxParams> slots;
  std::array<void*, kMaxParams + kMaxTileMaps> args;
  for (size_t i = 0; i < n; ++i) {
    const ir::Param& p = ce->params[i];
    args[i] = &slots[i];
    if (p.kind != ir::ParamKind::Tensor) {
      slots[i] = values[i];
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
    slots[i] = b->handle;
  }
  if (stream && stream->owner != this)
    throw Error(fmt::format("cuda run {}: the stream belongs to another backend", ce->entry));
  if (ce->tpg != 0 && g.tpg != ce->tpg)
    throw Error(fmt::format("cuda run {}: the code was lowered for {} threads per threadgroup, launched with {}",
                            ce->entry, ce->tpg, g.tpg));
  std::array<CUtensorMap, kMaxTileMaps> maps;
  for (size_t k = 0; k < ce->maps.size(); ++k) {
    encode_tile_map(*ce, ce->maps[k], *tensors[ce->maps[k].tensor], std::span(slots.data(), n), g, maps[k]);
    args[n + k] = &maps[k];
  }
  CUstream s = stream ? reinterpret_cast<CUstream>(stream->handle) : stream_;
  make_current();
  CUresult r;
  const bool programmatic = programmatic_ && ce->generated;
  if (programmatic) {
    CUlaunchAttribute pdl{};
    pdl.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    pdl.value.programmaticStreamSerializationAllowed = 1;
    const CUlaunchConfig c{g.grid[0], g.grid[1], g.grid[2], g.tpg, 1, 1, ce->shared_bytes, s, &pdl, 1};
    r = api_->cuLaunchKernelEx(&c, ce->function, args.data(), nullptr);
  } else {
    r = api_->cuLaunchKernel(ce->function, g.grid[0], g.grid[1], g.grid[2], g.tpg, 1, 1, ce->shared_bytes, s,
                             args.data(), nullptr);
  }
  if (r != CUDA_SUCCESS)
    throw DeviceError(fmt::format("{} of {} (grid {}x{}x{}, {} threads per threadgroup) failed: {}",
                                  programmatic ? "cuLaunchKernelEx (programmatic)" : "cuLaunchKernel", ce->entry,
                                  g.grid[0], g.grid[1], g.grid[2], g.tpg, result_text(r)));
}

// A copy_tile view of `buffer` as the driver's tensor map, its dims and strides evaluated for this
// launch (values: the parameters' slots). A view past the buffer is refused before the driver sees
// it; the CPU engine checks the view's other rules, and a refusal by the driver names the view too.
void CudaBackend::encode_tile_map(const CudaExecutable& exe, const codegen::TileMap& m, const Buffer& buffer,
                                  std::span<const uint64_t> values, const Geometry& g, CUtensorMap& out) const {
  const size_t bytes = storage_bytes(m.elem);
  const int type = bytes == 1   ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                   : bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_UINT16
                   : bytes == 4 ? CU_TENSOR_MAP_DATA_TYPE_UINT32
                                : CU_TENSOR_MAP_DATA_TYPE_UINT64;
  std::array<cuuint64_t, 3> dims{1, 1, 1}, strides{}, elem_strides{1, 0, 0};
  std::array<cuuint32_t, 3> box{}, unit{1, 1, 1};
  uint64_t last = 0;  // the view's last element
  bool empty = false;
  for (uint32_t d = 0; d < m.rank; ++d) {
    dims[d] = m.dims[d].eval(values, g.grid, g.tpg);
    box[d] = static_cast<cuuint32_t>(m.box[d]);
    if (d) elem_strides[d] = m.strides[d].eval(values, g.grid, g.tpg);
    if (d) strides[d - 1] = elem_strides[d] * bytes;
    empty = empty || dims[d] == 0;
    last += (dims[d] - 1) * elem_strides[d];
  }
  auto view = [&] {
    return fmt::format("rank {}, dims {}, strides {} elements, box {}, swizzle {}", m.rank,
                       fmt::join(std::span(dims.data(), m.rank), " x "),
                       fmt::join(std::span(elem_strides.data() + 1, m.rank - 1), ", "),
                       fmt::join(std::span(m.box.data(), m.rank), " x "), m.swizzle);
  };
  if (empty || last >= buffer.count)
    throw Error(fmt::format(
        "kernel {}: the copy_tile view of parameter '{}' ({}) {} its {} elements; nothing was "
        "launched",
        exe.entry, exe.params.at(m.tensor).name, view(), empty ? "has a dim of 0 within" : "passes", buffer.count));
  const CUresult r = api_->cuTensorMapEncodeTiled(
      &out, type, m.rank, reinterpret_cast<void*>(buffer.handle), dims.data(), strides.data(), box.data(), unit.data(),
      CU_TENSOR_MAP_INTERLEAVE_NONE, m.swizzle ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
      CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error(
        fmt::format("kernel {}: cuTensorMapEncodeTiled refuses the copy_tile view of parameter '{}' ({}, "
                    "address {:#x}): {}",
                    exe.entry, exe.params.at(m.tensor).name, view(), buffer.handle, result_text(r)));
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
  make_current();  // `work` may have made another device's context current (a capture of several)
  MTILE_CU(cuStreamEndCapture, stream_, &graph);
  CUgraphExec exec = nullptr;
  CUresult r = api_->cuGraphInstantiateWithFlags(&exec, graph, 0);
  if (r != CUDA_SUCCESS) {
    api_->cuGraphDestroy(graph);
    check(r, "cuGraphInstantiateWithFlags");
  }
  return CudaGraph(*this, graph, exec);
}

std::vector<CudaGraph> CudaBackend::capture_together(const std::vector<CudaBackend*>& backends,
                                                     const std::function<void()>& work) {
  size_t begun = 0;
  std::vector<CUgraph> graphs(backends.size(), nullptr);
  auto end_all = [&] {
    for (size_t i = 0; i < begun; ++i) {
      backends[i]->make_current();
      backends[i]->api_->cuStreamEndCapture(backends[i]->stream_, &graphs[i]);
    }
    begun = 0;
  };
  auto destroy_all = [&] {
    for (size_t i = 0; i < graphs.size(); ++i)
      if (graphs[i]) backends[i]->api_->cuGraphDestroy(std::exchange(graphs[i], nullptr));
  };
  try {
    for (CudaBackend* b : backends) {
      b->make_current();
      MTILE_CU(cuStreamBeginCapture_v2, b->stream_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
      ++begun;
    }
    work();
  } catch (...) {
    end_all();
    destroy_all();
    throw;
  }
  std::vector<CudaGraph> out;
  for (size_t i = 0; i < begun; ++i) {
    backends[i]->make_current();
    CUresult r = backends[i]->api_->cuStreamEndCapture(backends[i]->stream_, &graphs[i]);
    if (r != CUDA_SUCCESS) {
      begun = 0;
      destroy_all();
      check(r, "cuStreamEndCapture");
    }
  }
  begun = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    backends[i]->make_current();
    CUgraphExec exec = nullptr;
    CUresult r = backends[i]->api_->cuGraphInstantiateWithFlags(&exec, graphs[i], 0);
    if (r != CUDA_SUCCESS) {
      destroy_all();
      check(r, "cuGraphInstantiateWithFlags");
    }
    out.emplace_back(*backends[i], std::exchange(graphs[i], nullptr), exec);
  }
  return out;
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

namespace {
// Every thread xors 16-byte words of the buffer; a store happens only where the bits happen to
// match a constant, so the compiler must keep the loads and the buffer stays clean in L2.
// Reads the buffer twice: first with an evict_last policy, which displaces lines a kernel loaded
// with one (cache hints: mtile's `keep`, Triton's evict_last; a plain read leaves them in L2,
// bench/NOTES.md, eleventh session), then with evict_first, so that the next kernel's lines
// displace these first, as they would an empty cache's. Before sm_80 (no policies), plain reads.
constexpr const char* kEvictL2 =
    R"(#define MT_EVICT_READ(NAME, PRIORITY)                                                  \
  __device__ __forceinline__ uint4 NAME(const uint4* p) {                                                  \
    uint4 v;                                                                                               \
    asm volatile("{.reg .b64 q; createpolicy.fractional.L2::" PRIORITY ".b64 q, 1.0;\n\t"                  \
                 "ld.global.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], q;}"                            \
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));                                   \
    return v;                                                                                              \
  }
#if __CUDA_ARCH__ >= 800
MT_EVICT_READ(mt_read_last, "evict_last")
MT_EVICT_READ(mt_read_first, "evict_first")
#else
__device__ __forceinline__ uint4 mt_read_last(const uint4* p) { return *p; }
__device__ __forceinline__ uint4 mt_read_first(const uint4* p) { return *p; }
#endif
extern "C" __global__ void mtile_evict_l2(const uint4* p, unsigned int* sink, unsigned int words) {
  uint4 acc = make_uint4(0u, 0u, 0u, 0u);
  const unsigned int first = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
#pragma unroll 4
  for (unsigned int i = first; i < words; i += stride) {
    uint4 v = mt_read_last(p + i);
    acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w;
  }
#pragma unroll 4
  for (unsigned int i = first; i < words; i += stride) {
    uint4 v = mt_read_first(p + i);
    acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u) sink[0] = acc.x;
}
)";
}  // namespace

void CudaBackend::evict_l2(const Buffer& scratch) {
  check_usable(scratch, "cuda evict_l2");
  if (scratch.bytes() % 16 != 0 || scratch.bytes() / 16 > UINT32_MAX)
    throw Error(
        fmt::format("cuda evict_l2: the scratch buffer has {} bytes; it takes whole 16-byte words, fewer "
                    "than 2^32 of them",
                    scratch.bytes()));
  std::call_once(evict_l2_once_, [&] {
    evict_l2_ = prepare_source(kEvictL2, "mtile_evict_l2",
                               {{"p", ir::ParamKind::Tensor, ScalarType::u32, ir::Role::In, true},
                                {"sink", ir::ParamKind::Tensor, ScalarType::u32, ir::Role::Out, true},
                                {"words", ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In}});
  });
  Buffer as_words = scratch;  // the kernel's parameters are u32 words
  as_words.elem = ScalarType::u32;
  as_words.count = scratch.bytes() / 4;
  run(*evict_l2_, {{4 * static_cast<uint32_t>(multiprocessors()), 1, 1}, 512}, {&as_words, &as_words, nullptr},
      {0, 0, scratch.bytes() / 16});
}

CopyBandwidth CudaBackend::measure_copy_bandwidth(uint64_t bytes, int repetitions, const Buffer* flush) {
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
  for (int i = 0; i < repetitions; ++i) {
    if (flush) evict_l2(*flush);
    times.push_back(time_ms([&] { copy(dst.buffer, src.buffer); }));
  }
  std::sort(times.begin(), times.end());
  CopyBandwidth out;
  out.bytes = src.buffer.bytes();
  out.repetitions = repetitions;
  out.median_ms = times[times.size() / 2];
  out.gb_per_s = 2.0 * static_cast<double>(out.bytes) / (out.median_ms * 1e-3) / 1e9;
  return out;
}

}  // namespace mtile::cuda
