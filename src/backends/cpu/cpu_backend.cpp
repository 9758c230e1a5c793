// The CPU backend: host buffers and the IR engine.
#include <fmt/format.h>

#include <cstring>
#include <new>
#include <thread>

#include "backends/cpu/engine.hpp"
#include "mtile/runtime.hpp"
#include "runtime/host_memory.hpp"

namespace mtile {
namespace {

class CpuExecutable : public Executable {
 public:
  explicit CpuExecutable(const ir::Function& f) : fn(f) {}
  ir::Function fn;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const CpuOptions& o) : target_(Target::cpu()) {
    options_.sanitize = o.sanitize;
    options_.loop_budget = o.loop_budget;
  }
  std::string name() const override { return "cpu"; }
  std::string device_name() const override {
    return fmt::format(
        "CPU engine, {} host threads{}{}", target_.multiprocessors, options_.sanitize ? ", sanitizer on" : "",
        options_.loop_budget != kDefaultLoopBudget ? fmt::format(", loop budget {}", options_.loop_budget) : "");
  }
  const Target& target() const override { return target_; }

  Buffer alloc(ScalarType elem, uint64_t count) override {
    Buffer b{elem, count, 0, this, 0};
    // More than the host has would be granted (overcommit) and end in the OOM killer on first use.
    if (count > UINT64_MAX / 8 || b.bytes() > host_memory_bytes())
      throw DeviceError(fmt::format("cpu: can't allocate {} x {}: more than the host's {} bytes of memory", count,
                                    type_name(elem), host_memory_bytes()));
    // Aligned as the target promises (vector accesses rely on it).
    void* p = ::operator new[](std::max<uint64_t>(b.bytes(), 1), align(), std::nothrow);
    if (!p)
      throw DeviceError(
          fmt::format("cpu: can't allocate {} bytes ({} x {}): out of host memory", b.bytes(), count, type_name(elem)));
    b.handle = reinterpret_cast<uint64_t>(p);
    b.id = track_allocation();
    return b;
  }
  Buffer wrap(uint64_t address, ScalarType elem, uint64_t count) override {
    if (address == 0 && count > 0) throw Error("cpu wrap: a null pointer for a non-empty buffer");
    return Buffer{elem, count, address, this, 0};
  }
  void release(Buffer& b) override {
    check_usable(b, "cpu release");
    if (b.id) {
      forget_allocation(b.id);
      ::operator delete[](reinterpret_cast<uint8_t*>(b.handle), align());
    }
    b = Buffer{};
  }
  void upload(Buffer& dst, const void* host) override {
    check_usable(dst, "cpu upload");
    if (dst.bytes()) std::memcpy(ptr(dst), host, dst.bytes());
  }
  void download(const Buffer& src, void* host) override {
    check_usable(src, "cpu download");
    if (src.bytes()) std::memcpy(host, ptr(src), src.bytes());
  }
  std::shared_ptr<Executable> prepare(const ir::Function& lowered) override {
    return std::make_shared<CpuExecutable>(lowered);
  }
  void run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors, const std::vector<uint64_t>& values,
           const Stream*) override {
    const ir::Function& fn = static_cast<CpuExecutable&>(exe).fn;
    std::vector<cpu::TensorView> views;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Buffer* b = tensors[i];
      bool out = i < fn.params.size() && fn.params[i].role == ir::Role::Out;
      views.push_back(b ? cpu::TensorView{ptr(*b), b->elem, b->count, out} : cpu::TensorView{});
    }
    cpu::execute(fn, g, views, values, options_);
  }
  void synchronize() override {}
  // Simulated ranks (one process, host threads): every rank is this backend, and every view is
  // the one host allocation of ranks x count elements, zeroed.
  SymmetricMemory alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count) override {
    for (size_t r = 0; r < ranks.size(); ++r)
      if (ranks[r] != this)
        throw Error(
            fmt::format("cpu alloc_symmetric: rank {} is {} backend {}, not this CPU engine (simulated "
                        "ranks share one)",
                        r, ranks[r] ? "the" : "no", ranks[r] ? ranks[r]->name() : ""));
    if (ranks.empty() || count > UINT64_MAX / 8 / ranks.size())
      throw Error(fmt::format("cpu alloc_symmetric: {} ranks of {} elements", ranks.size(), count));
    Buffer b = alloc(elem, ranks.size() * count);
    std::memset(ptr(b), 0, b.bytes());
    return SymmetricMemory{std::vector<Buffer>(ranks.size(), b), count, count};
  }
  void release_symmetric(SymmetricMemory& m) override {
    if (m.views.empty()) throw Error("cpu release_symmetric: the memory was released (or never allocated)");
    release(m.views[0]);
    m = SymmetricMemory{};
  }

 private:
  std::align_val_t align() const { return std::align_val_t{target_.buffer_alignment}; }
  static void* ptr(const Buffer& b) { return reinterpret_cast<void*>(b.handle); }
  Target target_;
  cpu::EngineOptions options_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options) {
  if (options.loop_budget == 0) throw Error("cpu backend: a loop budget of 0 iterations would stop every loop");
  return std::make_unique<CpuBackend>(options);
}

}  // namespace mtile
