// Runtime: backends (CPU engine, CUDA), buffers and streams (the backend's or the caller's), the
// Context that owns everything compiled, and the checked launch of a kernel.
//
//   mtile::Context ctx;                                   // or Context::global()
//   mtile::Backend& gpu = ctx.backend("cuda");
//   mtile::Buffer x = gpu.wrap(ptr, ScalarType::bf16, rows * n);   // memory you own
//   ctx.launch(gpu, mtile::find_kernel("rms_norm_residual"), ScalarType::bf16,
//              {{"rows", rows}, {"n", n}}, {&x, &res, &w, &out, &eps, nullptr});
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/registry.hpp"
#include "mtile/target.hpp"

namespace mtile {

class Backend;

// Typed storage on a backend. `handle` is a host pointer (cpu) or a device address (cuda).
struct Buffer {
  ScalarType elem = ScalarType::f32;
  uint64_t count = 0;
  uint64_t handle = 0;
  Backend* owner = nullptr;
  uint64_t id = 0;  // the backend's allocation serial; 0 for memory the caller owns (wrap)
  uint64_t bytes() const { return count * storage_bytes(elem); }
  bool borrowed() const { return owner != nullptr && id == 0; }
};

// An ordered queue of device work. `handle` is the native stream (a CUstream on CUDA; 0 is the
// legacy default stream there); the CPU engine runs everything at once and has only its own.
struct Stream {
  uint64_t handle = 0;
  Backend* owner = nullptr;
};

// Memory every rank of a collective reads and writes at one address range (tensor parallelism):
// one slice of `count` elements per rank, rank r's slice at element r * slot of the range and in
// rank r's memory. views[r] is the whole range (ranks x slot elements) as a Buffer of rank r's
// backend: what a launch on rank r passes for a symmetric tensor (KernelSpec::symmetric).
struct SymmetricMemory {
  std::vector<Buffer> views;
  uint64_t slot = 0;   // elements from one rank's slice to the next (CUDA: whole allocation granules)
  uint64_t count = 0;  // elements of a rank's slice that were asked for (<= slot)
  uint64_t handle() const { return views.empty() ? 0 : views[0].handle; }
};

// A lowered function made ready to run on one backend (CUDA: a loaded module and function).
class Executable {
 public:
  virtual ~Executable() = default;
};

class Backend {
 public:
  Backend();
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  // Unique for the process lifetime: caches key on it, never on the address.
  uint64_t instance() const { return instance_; }
  virtual std::string name() const = 0;         // "cpu", "cuda"
  virtual std::string device_name() const = 0;  // "NVIDIA H100 80GB HBM3 (sm_90a)", "CPU engine, 2 threads"
  virtual const Target& target() const = 0;     // the facts passes, contracts and rules use

  // Memory. alloc throws DeviceError when the memory is not there. wrap takes memory the caller
  // owns and keeps alive while launches use it (a host pointer on the CPU engine, a device
  // pointer of this backend's device on CUDA, which the driver confirms); releasing a wrapped
  // buffer forgets it and frees nothing.
  virtual Buffer alloc(ScalarType elem, uint64_t count) = 0;
  virtual Buffer wrap(uint64_t address, ScalarType elem, uint64_t count) = 0;
  virtual void release(Buffer& b) = 0;
  // Why `b` can't be used here, or "" when it can: it must be allocated by or wrapped for this
  // backend and not released since. check_usable throws Error with `what` and the reason.
  virtual std::string why_unusable(const Buffer& b) const;
  void check_usable(const Buffer& b, const std::string& what) const;
  virtual void upload(Buffer& dst, const void* host) = 0;    // b.bytes() from host
  virtual void download(const Buffer& src, void* host) = 0;  // b.bytes() to host

  // Streams: the backend's own, or the caller's native stream (CUDA: a CUstream of this device,
  // e.g. PyTorch's current stream, so launches join its order and its graph captures).
  virtual Stream default_stream();
  virtual Stream wrap_stream(uint64_t native);

  // `lowered` is the output of passes::run_pipeline for target(). Backends do not cache: the
  // Context does.
  virtual std::shared_ptr<Executable> prepare(const ir::Function& lowered) = 0;
  // Runs it. `tensors` has one entry per parameter (nullptr for the others); `values` has the bits
  // of every constexpr (u32) and scalar parameter (its type's bits; f16/bf16 scalars as f32), one
  // per parameter (ignored for tensors). Contract and sizes are checked before this.
  virtual void run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors,
                   const std::vector<uint64_t>& values, const Stream* stream = nullptr) = 0;
  virtual void synchronize() = 0;
  // Symmetric memory over `ranks` (this backend is ranks[0]): the CPU engine simulates ranks in one
  // process, so every rank is this backend and the range is host memory; CUDA maps slice r on
  // device r's memory (cuMemCreate) into one range every rank's device may access (cuMemMap),
  // after enabling peer access between the devices. Throws Error saying why it can't (a backend
  // without it, a rank of another kind, a device that can't reach a peer).
  virtual SymmetricMemory alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count);
  virtual void release_symmetric(SymmetricMemory& m);
  // Milliseconds `work` (launches on this backend) takes to complete: device events on GPUs,
  // the wall clock around work + synchronize on the CPU.
  virtual double measure_ms(const std::function<void()>& work);

 protected:
  // Allocation bookkeeping for check_usable: a fresh id for an allocation; release() forgets it
  // (false when it was not live: released twice, or never this backend's).
  uint64_t track_allocation();
  bool forget_allocation(uint64_t id);

 private:
  uint64_t instance_;
  mutable std::mutex live_mu_;
  std::unordered_set<uint64_t> live_;
  uint64_t next_id_ = 1;
};

// alloc_symmetric on ranks[0], which must be one of the ranks' backends.
SymmetricMemory alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count);

// "cpu", "cpu:sanitize" (the CPU engine with its sanitizer on: races, reads of unwritten memory;
// docs/reliability.md), "cuda" or "cuda:N" (device N); throws Error saying why a backend is
// unavailable.
std::unique_ptr<Backend> make_backend(const std::string& name);

// Loop iterations (every for_ and while_ together) one threadgroup may run on the CPU engine
// before the launch stops with a "runaway loop" error.
inline constexpr uint64_t kDefaultLoopBudget = uint64_t{1} << 26;
// The CPU engine with chosen checks (`mtile run --sanitize --loop-budget N`).
struct CpuOptions {
  bool sanitize = false;  // races and unwritten reads (docs/reliability.md)
  uint64_t loop_budget = kDefaultLoopBudget;
};
std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options);
// "cuda" when a CUDA device can be opened, else "cpu".
std::string default_backend_name();
std::vector<std::string> backend_names();  // compiled in

// Options of a launch.
struct LaunchOptions {
  Config config;                     // meta-parameter overrides (still checked by the contract)
  std::optional<Geometry> geometry;  // override the dispatch rule (still checked)
  bool bake_constexprs = true;     // specialise constexprs into the code (always, where a tensor passes 2^31 elements)
  const Stream* stream = nullptr;  // default: the backend's own stream
  // Values of the kernel's scalar parameters, by name (every one must be given; integers must be
  // exact). Not part of the plan: each launch may pass others.
  std::map<std::string, double> scalars;
};

// A kernel lowered for one target: its IR after the pipeline and that IR's structural hash.
struct Lowered {
  ir::Function fn;
  uint64_t hash = 0;
};

// Everything a launch derives from (backend, kernel, dtype, shape, options), before buffers:
// the rules' results, the lowered code and the loaded executable.
struct LaunchPlan {
  Kernel kernel;
  ScalarType dtype = ScalarType::f32;
  Shape shape;
  Resolved resolved;  // config, geometry, constexprs, sizes
  std::shared_ptr<const Lowered> lowered;
  std::shared_ptr<Executable> exe;
  std::vector<uint64_t> values;    // per parameter: constexprs' bits (scalars are filled per launch)
  std::vector<uint64_t> elements;  // per parameter (0 for the others)
  const Geometry& geometry() const { return resolved.geometry; }
  const std::vector<ir::Param>& params() const { return lowered->fn.params; }
};

struct CacheCounts {
  size_t entries = 0, capacity = 0;
  uint64_t hits = 0, misses = 0, evictions = 0;
};

// The one owner of compiled state: traces (per kernel definition, dtype and Config), lowered IR
// (per kernel identity, i.e. name and traced IR's hash, and Target), executables (per lowered
// IR's hash and backend) and launch plans, each cache bounded (least recently used goes first).
// Thread-safe: a value is computed once per key while callers of that key wait, and no lock is
// held while it is computed, so a compile never stalls launches of other kernels.
class Context {
 public:
  struct Limits {
    size_t traced = 512, lowered = 512, compiled = 512, plans = 4096;
  };
  Context();
  explicit Context(Limits limits);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The context of the CLI and of the free launch(); never destroyed.
  static Context& global();

  // A backend this context opens on first use and owns: "cpu", "cuda", "cuda:N"; "" = the default
  // (cuda when a GPU opens, else cpu).
  Backend& backend(const std::string& name = "");

  std::shared_ptr<const ir::Function> traced(const Kernel& k, ScalarType dtype, const Config& config);
  std::shared_ptr<const Lowered> lowered(const Kernel& k, ScalarType dtype, const Config& config, const Target& target,
                                         const std::map<std::string, uint32_t>& bake,
                                         const std::set<std::string>& wide = {}, uint32_t tpg = 0);
  std::shared_ptr<Executable> compiled(Backend& backend, const Lowered& lowered);
  // Resolves the rules, checks the contract (before anything is compiled), lowers and prepares.
  // Throws Error for a violated contract: nothing reaches the device.
  std::shared_ptr<const LaunchPlan> plan(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                                         const LaunchOptions& opts = {});
  // Checks the buffers against the plan (count, type, owner, alignment, not released), takes the
  // scalars and the stream from `opts`, and runs.
  void run(Backend& backend, const LaunchPlan& plan, const std::vector<Buffer*>& tensors,
           const LaunchOptions& opts = {});
  // plan() (cached) and run().
  void launch(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
              const std::vector<Buffer*>& tensors, const LaunchOptions& opts = {});

  struct Counts {
    CacheCounts traced, lowered, compiled, plans;
  };
  Counts counts() const;
  void clear();  // drops every cached value (backends stay open)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A collective kernel's launch on every rank at once (KernelSpec::symmetric): plans[r], tensors[r]
// and opts[r] (with its scalar "rank" = r) are rank r's, on ranks[r]. The CPU engine runs each
// rank on a host thread of its own (its threadgroups wait for the other ranks'); CUDA launches
// are asynchronous, issued in rank order. Rethrows the lowest rank's error.
void run_collective(Context& ctx, const std::vector<Backend*>& ranks,
                    const std::vector<std::shared_ptr<const LaunchPlan>>& plans,
                    const std::vector<std::vector<Buffer*>>& tensors, const std::vector<LaunchOptions>& opts);

// Context::global().launch(...).
void launch(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
            const std::vector<Buffer*>& tensors, const LaunchOptions& opts = {});

}  // namespace mtile
