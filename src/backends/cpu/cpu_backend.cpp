// The CPU backend: host buffers and the IR engine.
#include <fmt/format.h>

#include <cstring>
#include <new>
#include <thread>

#include "backends/cpu/engine.hpp"
#include "mtile/runtime.hpp"

namespace mtile {
namespace {

constexpr std::align_val_t kAlign{16};

class CpuExecutable : public Executable {
 public:
  explicit CpuExecutable(const ir::Function& f) : fn(f) {}
  ir::Function fn;
};

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string device_name() const override {
    return fmt::format("CPU engine, {} host threads", std::max(1u, std::thread::hardware_concurrency()));
  }
  Buffer alloc(ScalarType elem, uint64_t count) override {
    Buffer b{elem, count, 0, this};
    // 16-byte aligned, as the IR promises (vector accesses rely on it).
    b.handle = reinterpret_cast<uint64_t>(new (kAlign) uint8_t[std::max<uint64_t>(b.bytes(), 1)]);
    return b;
  }
  void release(Buffer& b) override {
    ::operator delete[](reinterpret_cast<uint8_t*>(b.handle), kAlign);
    b.handle = 0;
  }
  void upload(Buffer& dst, const void* host) override { std::memcpy(ptr(dst), host, dst.bytes()); }
  void download(const Buffer& src, void* host) override { std::memcpy(host, ptr(src), src.bytes()); }
  std::shared_ptr<Executable> prepare(const ir::Function& lowered) override {
    return std::make_shared<CpuExecutable>(lowered);
  }
  void run(Executable& exe, const Geometry& g, const std::vector<Buffer*>& tensors,
           const std::vector<uint32_t>& constexprs) override {
    std::vector<cpu::TensorView> views;
    for (Buffer* b : tensors) views.push_back(b ? cpu::TensorView{ptr(*b), b->elem, b->count} : cpu::TensorView{});
    cpu::execute(static_cast<CpuExecutable&>(exe).fn, g, views, constexprs);
  }
  void synchronize() override {}

 private:
  static void* ptr(const Buffer& b) { return reinterpret_cast<void*>(b.handle); }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace mtile
