// The CUDA backend: generated CUDA C++ compiled with NVRTC for the device's arch (the CUBIN cached
// on disk; loaded executables are cached by the Context), launched through the driver API on the
// backend's stream or the caller's. Launches never synchronize, so a sequence of them can be
// captured into a CUDA graph.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/driver_api.hpp"
#include "backends/cuda/module_cache.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "codegen/tile_maps.hpp"
#include "mtile/runtime.hpp"

namespace mtile::cuda {

class CudaBackend;

// The device's primary context, held while a backend or any module loaded in it lives.
struct DeviceContext {
  const DriverApi* api = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;
  ~DeviceContext();
  void make_current() const;  // the current context is per thread, and others (PyTorch) change it
};

// A loaded kernel. Owns its module, and keeps the device context alive while it lives.
class CudaExecutable final : public Executable {
 public:
  ~CudaExecutable() override;
  const CudaBackend* owner = nullptr;
  std::shared_ptr<const DeviceContext> device;
  std::string entry;                   // the extern "C" kernel symbol
  std::vector<ir::Param> params;       // one kernel parameter each: tensor pointer or u32
  uint32_t tpg = 0;                    // threads per threadgroup the code was lowered for; 0 = any
  uint32_t shared_bytes = 0;           // dynamic shared memory every launch passes (arrays past 48 KiB)
  bool generated = false;              // mtile's code: it starts with mt_wait_prior_grids (PDL-safe)
  std::vector<codegen::TileMap> maps;  // copy_tile's tensor maps, passed after the parameters
  CUmodule module = nullptr;
  CUfunction function = nullptr;
};

// An event of a backend's context. Move-only.
class CudaEvent {
 public:
  explicit CudaEvent(CUevent e) : event_(e) {}
  CudaEvent(CudaEvent&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  CudaEvent& operator=(CudaEvent&&) = delete;
  ~CudaEvent();
  CUevent get() const { return event_; }

 private:
  CUevent event_;
};

// An instantiated CUDA graph of captured launches. Move-only; replays on the backend's stream.
class CudaGraph {
 public:
  CudaGraph(const CudaBackend& backend, CUgraph graph, CUgraphExec exec)
      : backend_(&backend), graph_(graph), exec_(exec) {}
  CudaGraph(CudaGraph&& o) noexcept;
  CudaGraph& operator=(CudaGraph&&) = delete;
  ~CudaGraph();
  void replay();  // enqueues every captured launch; does not synchronize
  CUgraphExec exec() const { return exec_; }

 private:
  const CudaBackend* backend_;
  CUgraph graph_;
  CUgraphExec exec_;
};

// One symmetric allocation (CudaBackend::alloc_symmetric): a reserved range with slice r mapped
// from memory created on ranks[r]'s device. Every rank's backend holds it, keyed by the base.
struct SymmetricAllocation {
  std::vector<CudaBackend*> ranks;
  std::vector<uint64_t> view_ids;                     // views[r].id, from ranks[r]'s bookkeeping
  std::vector<CUmemGenericAllocationHandle> handles;  // created so far (slice r: handles[r])
  size_t mapped = 0;                                  // slices mapped so far
  CUdeviceptr base = 0;
  uint64_t slot_bytes = 0;
  std::atomic<bool> released{false};  // claimed by the one call that frees it
};

struct CopyBandwidth {
  uint64_t bytes = 0;  // size of one copy
  int repetitions = 0;
  double median_ms = 0;  // of one copy
  double gb_per_s = 0;   // (bytes read + bytes written) / median time, 1 GB = 1e9 bytes
};

class CudaBackend final : public Backend {
 public:
  // Opens device `ordinal`. Throws Error saying why CUDA can't be used: no libcuda.so.1, no
  // device, no NVRTC.
  explicit CudaBackend(int ordinal = 0, CacheConfig cache = CacheConfig::from_env());
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string device_name() const override;                  // "NVIDIA H100 80GB HBM3 (sm_90a)"
  const Target& target() const override { return target_; }  // read off the device
  Buffer alloc(ScalarType elem, uint64_t count) override;
  // A device pointer the caller owns (cudaMalloc, PyTorch): the driver must confirm that it is
  // device memory of this device and that the whole range lies in one allocation.
  Buffer wrap(uint64_t address, ScalarType elem, uint64_t count) override;
  void release(Buffer& b) override;  // a view of symmetric memory is an Error: release_symmetric
  void upload(Buffer& dst, const void* host) override;
  void download(const Buffer& src, void* host) override;  // waits for the stream
  Stream default_stream() override;
  // A CUstream of this device's primary context (the driver confirms it); 0 is the legacy
  // default stream.
  Stream wrap_stream(uint64_t native) override;
  // Generates, compiles (or finds the CUBIN on disk) and loads `lowered`. NVRTC rejecting the
  // generated code is an InternalError.
  std::shared_ptr<Executable> prepare(const ir::Function& lowered) override;
  void run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors, const std::vector<uint64_t>& values,
           const Stream* stream = nullptr) override;
  void synchronize() override;
  double measure_ms(const std::function<void()>& work) override { return time_ms(work); }
  // Every rank a CudaBackend of its own device, all pairs peer-capable; slot = whole granules
  // (the devices' recommended granularity). Zeroed on return. release_symmetric may be called on
  // any rank's backend; a backend destroyed first frees the symmetric memory it is a rank of.
  SymmetricMemory alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count) override;
  void release_symmetric(SymmetricMemory& m) override;

  // Hand-written CUDA source with `entry` as its extern "C" kernel and one kernel parameter per
  // entry of `params` (the ABI of generated code). Goes through the same caches as prepare().
  std::shared_ptr<Executable> prepare_source(const std::string& src, const std::string& entry,
                                             const std::vector<ir::Param>& params);

  // Device facts.
  int ordinal() const { return ordinal_; }
  const std::string& arch() const { return arch_; }  // "sm_90a"
  int compute_capability() const { return cc_major_ * 10 + cc_minor_; }
  int multiprocessors() const { return static_cast<int>(target_.multiprocessors); }
  CUcontext context() const { return device_->context; }
  CUstream stream() const { return stream_; }
  CacheStats cache_stats() const { return cache_.stats(); }
  // Programmatic dependent launch (docs/architecture.md, "Launches on CUDA"): on sm_90+ run() launches generated
  // kernels so that each may begin while the kernel before it on the stream finishes (its first statement waits for
  // that kernel's memory). On by default there; MTILE_CUDA_PDL=0 turns it off.
  bool programmatic_launches() const { return programmatic_; }
  void set_programmatic_launches(bool on) { programmatic_ = on && cc_major_ >= 9; }
  const ModuleCache& module_cache() const { return cache_; }

  // Stream-ordered extras for tests and benchmarks.
  void fill_bytes(Buffer& b, uint8_t value);  // cuMemsetD8Async
  void copy(Buffer& dst, const Buffer& src);  // device to device, dst.bytes() == src.bytes()
  CudaEvent create_event();
  void record(const CudaEvent& e);                                 // on this backend's stream
  float elapsed_ms(const CudaEvent& start, const CudaEvent& end);  // waits for `end`
  float time_ms(const std::function<void()>& work);                // events around `work`, waits
  // Captures the launches `work` makes on this backend's stream into a graph. Prepare and upload
  // before: nothing in `work` may allocate, copy from the host or synchronize.
  CudaGraph capture(const std::function<void()>& work);
  // The same on several backends' streams at once, one graph each: the launches of a collective's
  // ranks (NCCL groups, one-shot kernels) that `work` issues to all of them. Every capture ends
  // before any graph is instantiated (instantiating during a capture is refused).
  static std::vector<CudaGraph> capture_together(const std::vector<CudaBackend*>& backends,
                                                 const std::function<void()>& work);
  // The driver's own launch of a prepared kernel, for measuring what run() adds: `args` as
  // cuLaunchKernel takes them (a pointer to each parameter's value).
  static CUfunction cu_function(const Executable& exe);
  void launch_raw(CUfunction f, const Geometry& g, void** args);
  // Evicts the L2 cache by reading `scratch` (a buffer larger than L2, whole 16-byte words) with a
  // kernel that stores nothing: a flush that writes leaves dirty lines whose write-back lands in
  // the next timed kernel. Stream-ordered.
  void evict_l2(const Buffer& scratch);
  // Device-to-device copy of `bytes` timed with events (median of `repetitions`), each copy after
  // evict_l2(*flush) where given (as the benchmark times its cases).
  CopyBandwidth measure_copy_bandwidth(uint64_t bytes = 512ull << 20, int repetitions = 20,
                                       const Buffer* flush = nullptr);

  // Makes this backend's context current on the calling thread (every entry point does this).
  void make_current() const;

 private:
  void encode_tile_map(const CudaExecutable& exe, const codegen::TileMap& m, const Buffer& buffer,
                       std::span<const uint64_t> values, const Geometry& g, CUtensorMap& out) const;
  std::shared_ptr<CudaExecutable> load(const std::string& src, const std::string& entry,
                                       const std::vector<ir::Param>& params, const CacheKeyInputs& key_inputs,
                                       bool generated);
  // Symmetric memory (symmetric_memory.cpp). Unregisters `a` from every rank and frees it; throws
  // DeviceError for a failing driver call unless `quiet`.
  static void free_symmetric(const std::shared_ptr<SymmetricAllocation>& a, bool quiet);
  bool is_symmetric_view(const Buffer& b) const;

  mutable std::mutex symmetric_mu_;
  std::map<CUdeviceptr, std::shared_ptr<SymmetricAllocation>> symmetric_;  // those this backend is a rank of
  std::set<uint64_t> symmetric_views_;                                     // ids of its views

  int ordinal_;
  std::shared_ptr<DeviceContext> device_;
  CUstream stream_ = nullptr;
  int cc_major_ = 0, cc_minor_ = 0;
  std::string arch_, device_name_, nvrtc_version_;
  Target target_;
  const DriverApi* api_ = nullptr;  // the hot path skips driver()'s checks
  bool programmatic_ = false;
  std::once_flag evict_l2_once_;
  std::shared_ptr<Executable> evict_l2_;  // evict_l2's kernel, compiled on first use
  ModuleCache cache_;
};

// The backend of device `ordinal` as the runtime sees it; throws Error saying why CUDA can't be used.
std::unique_ptr<Backend> make_cuda_backend(int ordinal = 0);

// Generates and compiles `lowered` for `arch` without a device (the NVRTC test of every kernel).
// A kernel the arch can't run (Mma before sm_80) is an Error naming the kernel and the arch.
NvrtcResult compile_for_arch(const ir::Function& lowered, const std::string& arch);

}  // namespace mtile::cuda
