// Runtime: backends (CPU engine, CUDA), buffers, and the checked launch of a registered kernel.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/registry.hpp"

namespace mtile {

class Backend;

// Typed storage owned by a backend. `handle` is a host pointer (cpu) or a device address (cuda).
struct Buffer {
  ScalarType elem = ScalarType::f32;
  uint64_t count = 0;
  uint64_t handle = 0;
  Backend* owner = nullptr;
  uint64_t bytes() const { return count * storage_bytes(elem); }
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
  // Unique for the process lifetime: caches key on it, never on the address.
  uint64_t instance() const { return instance_; }
  virtual std::string name() const = 0;         // "cpu", "cuda"
  virtual std::string device_name() const = 0;  // "NVIDIA H100 80GB HBM3 (sm_90a)", "CPU engine, 2 threads"
  virtual Buffer alloc(ScalarType elem, uint64_t count) = 0;
  virtual void release(Buffer& b) = 0;
  virtual void upload(Buffer& dst, const void* host) = 0;    // b.bytes() from host
  virtual void download(const Buffer& src, void* host) = 0;  // b.bytes() to host
  // `lowered` is the output of passes::run_pipeline. Backends may cache by structural hash.
  virtual std::shared_ptr<Executable> prepare(const ir::Function& lowered) = 0;
  // Runs it. `tensors` has one entry per parameter (nullptr for constexprs); `constexprs` has one
  // value per parameter (ignored for tensors). Contract and sizes are checked before this.
  virtual void run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors,
                   const std::vector<uint32_t>& constexprs) = 0;
  virtual void synchronize() = 0;
  // Milliseconds `work` (launches on this backend) takes to complete: device events on GPUs,
  // the wall clock around work + synchronize on the CPU.
  virtual double measure_ms(const std::function<void()>& work);

 private:
  uint64_t instance_;
};

// "cpu" or "cuda"; throws Error saying why a backend is unavailable.
std::unique_ptr<Backend> make_backend(const std::string& name);
// "cuda" when a CUDA device can be opened, else "cpu".
std::string default_backend_name();
std::vector<std::string> backend_names();  // compiled in

// Options of a launch through the registry.
struct LaunchOptions {
  std::optional<Geometry> geometry;  // override the kernel's dispatch rule (still checked)
  bool bake_constexprs = true;       // specialise constexprs into the code
};

// Traces `k` for `dtype`, lowers it, checks contract and buffers, and runs it on `backend`.
// A violated contract throws Error before anything reaches the device.
void launch(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
            const std::vector<Buffer*>& tensors, const LaunchOptions& opts = {});

// The lowered IR of one variant (cached per kernel, dtype and baked values).
std::shared_ptr<const ir::Function> lowered_kernel(const KernelSpec& k, ScalarType dtype,
                                                   const std::map<std::string, uint32_t>& bake);

}  // namespace mtile
