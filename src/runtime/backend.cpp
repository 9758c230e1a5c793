// What every backend shares: its instance number, allocation bookkeeping, streams, timing.
#include <fmt/format.h>

#include <atomic>
#include <chrono>

#include "mtile/runtime.hpp"

namespace mtile {

Backend::Backend() {
  static std::atomic<uint64_t> next{1};
  instance_ = next++;
}

double Backend::measure_ms(const std::function<void()>& work) {
  auto t0 = std::chrono::steady_clock::now();
  work();
  synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t Backend::track_allocation() {
  std::lock_guard lock(live_mu_);
  uint64_t id = next_id_++;
  live_.insert(id);
  return id;
}

bool Backend::forget_allocation(uint64_t id) {
  std::lock_guard lock(live_mu_);
  return live_.erase(id) > 0;
}

std::string Backend::why_unusable(const Buffer& b) const {
  // The owner is only compared, never called: it may be gone.
  if (b.owner != this)
    return b.owner ? "belongs to another backend" : "belongs to no backend (never allocated or wrapped, or released)";
  if (b.count > 0 && b.handle == 0) return "has no memory (released)";
  if (b.id != 0) {
    std::lock_guard lock(live_mu_);
    if (!live_.count(b.id)) return "was released";
  }
  return {};
}

void Backend::check_usable(const Buffer& b, const std::string& what) const {
  std::string why = why_unusable(b);
  if (!why.empty())
    throw Error(fmt::format("{}: the buffer ({} x {} at 0x{:x}) {}", what, b.count, type_name(b.elem), b.handle, why));
}

Stream Backend::default_stream() {
  return Stream{0, this};
}

Stream Backend::wrap_stream(uint64_t native) {
  if (native != 0)
    throw Error(
        fmt::format("backend {} has no native streams to wrap (0x{:x}): it runs launches at once", name(), native));
  return default_stream();
}

SymmetricMemory Backend::alloc_symmetric(const std::vector<Backend*>&, ScalarType, uint64_t) {
  throw Error(fmt::format("backend {} has no symmetric memory (collective kernels run on cpu and cuda)", name()));
}

void Backend::release_symmetric(SymmetricMemory&) {
  throw Error(fmt::format("backend {} has no symmetric memory to release", name()));
}

SymmetricMemory alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count) {
  if (ranks.empty() || !ranks[0]) throw Error("alloc_symmetric: no ranks");
  return ranks[0]->alloc_symmetric(ranks, elem, count);
}

}  // namespace mtile
