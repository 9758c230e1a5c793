// Fixed targets (CPU engine, CUDA architectures, Apple GPU families) and the facts as rule bindings.
#include "mtile/target.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "mtile/types.hpp"

namespace mtile {

Target Target::cpu() {
  Target t;
  t.backend = "cpu";
  t.name = "cpu";
  t.multiprocessors = std::max(1u, std::thread::hardware_concurrency());
  // The engine runs one threadgroup per host thread at a time.
  t.max_threads_per_multiprocessor = t.max_threads_per_threadgroup;
  t.max_threadgroups_per_multiprocessor = 1;
  t.registers_per_multiprocessor = 0;  // none: a thread's values live in host memory
  t.shared_memory_per_threadgroup = 64 * 1024;
  t.async_mma = true;
  t.async_copy = true;
  t.tile_copy = true;
  return t;
}

Target Target::cuda(const std::string& arch) {
  Target t;
  t.backend = "cuda";
  t.name = arch;
  t.max_grid = {2147483647u, 65535, 65535};
  t.async_copy = true;  // cp.async: both known archs are sm_80 or newer
  if (arch == "sm_90a" || arch == "sm_90") {
    t.multiprocessors = 132;
    t.shared_memory_per_threadgroup = 227 * 1024;  // with the opt-in, past the static 48 KiB
    t.max_threads_per_multiprocessor = 2048;
    t.max_threadgroups_per_multiprocessor = 32;
    t.async_mma = arch == "sm_90a";
    t.tile_copy = true;
  } else if (arch == "sm_80") {
    t.multiprocessors = 108;
    t.shared_memory_per_threadgroup = 163 * 1024;  // with the opt-in
    t.max_threads_per_multiprocessor = 2048;
    t.max_threadgroups_per_multiprocessor = 32;
  } else {
    throw Error(fmt::format("unknown CUDA target '{}' (known: sm_90a, sm_80; a device backend reads its own)", arch));
  }
  return t;
}

Target Target::metal(const std::string& family) {
  Target t;
  t.backend = "metal";
  t.name = family;
  t.max_grid = {4294967295u, 4294967295u, 4294967295u};
  // The pipeline forms no vector accesses for Metal: Metal's compiler merges scalar ones itself.
  t.max_vector_bytes = 0;
  t.shared_memory_per_threadgroup = 32 * 1024;
  t.max_threads_per_multiprocessor = 1024;
  t.max_threadgroups_per_multiprocessor = 24;
  t.registers_per_multiprocessor = 0;  // Apple does not say
  if (family == "apple7")
    t.multiprocessors = 8;
  else if (family == "apple8")
    t.multiprocessors = 10;
  else if (family == "apple9")
    t.multiprocessors = 10;
  else
    throw Error(fmt::format("unknown Metal GPU family '{}' (known: apple7, apple8, apple9)", family));
  return t;
}

Target Target::named(const std::string& spec) {
  size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon), detail = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "cpu" && detail.empty()) return cpu();
  if (kind == "cuda") return cuda(detail.empty() ? "sm_90a" : detail);
  if (kind == "metal" || kind == "msl") return metal(detail.empty() ? "apple9" : detail);
  throw Error(fmt::format("unknown target '{}' (known: {})", spec, fmt::join(known_names(), ", ")));
}

std::vector<std::string> Target::known_names() {
  return {"cpu", "cuda:sm_90a", "cuda:sm_80", "metal:apple7", "metal:apple8", "metal:apple9"};
}

uint64_t Target::resident_threadgroups(uint32_t tpg) const {
  if (tpg == 0) return 0;
  uint64_t per_mp = std::min<uint64_t>(max_threadgroups_per_multiprocessor, max_threads_per_multiprocessor / tpg);
  return per_mp * multiprocessors;
}

const std::vector<std::string>& Target::binding_names() {
  static const std::vector<std::string> names = {
      "simd_width",       "max_tpg",      "sm_count",      "max_threads_per_sm", "max_tgs_per_sm",
      "registers_per_sm", "vector_bytes", "shared_memory", "buffer_alignment",   "max_grid",
      "max_grid_y",       "max_grid_z",   "async_mma",     "async_copy",         "tile_copy"};
  return names;
}

void Target::bind(rule::Bindings& b) const {
  b["simd_width"] = simd_width;
  b["max_tpg"] = max_threads_per_threadgroup;
  b["sm_count"] = multiprocessors;
  b["max_threads_per_sm"] = max_threads_per_multiprocessor;
  b["max_tgs_per_sm"] = max_threadgroups_per_multiprocessor;
  b["registers_per_sm"] = registers_per_multiprocessor;
  b["vector_bytes"] = max_vector_bytes;
  b["shared_memory"] = shared_memory_per_threadgroup;
  b["buffer_alignment"] = buffer_alignment;
  b["max_grid"] = max_grid[0];
  b["max_grid_y"] = max_grid[1];
  b["max_grid_z"] = max_grid[2];
  b["async_mma"] = async_mma ? 1 : 0;
  b["async_copy"] = async_copy ? 1 : 0;
  b["tile_copy"] = tile_copy ? 1 : 0;
}

std::string Target::pipeline_key() const {
  return fmt::format("{}/{}/simd{}/vec{}/align{}", backend, name, simd_width, max_vector_bytes, buffer_alignment);
}

std::string Target::describe() const {
  return fmt::format(
      "{} {}{}: {} multiprocessors, simd {}, <= {} threads a threadgroup, {} KiB threadgroup memory, "
      "{}-byte accesses{}",
      backend, name, device.empty() ? "" : " (" + device + ")", multiprocessors, simd_width,
      max_threads_per_threadgroup, shared_memory_per_threadgroup / 1024, max_vector_bytes,
      async_mma ? ", async MMA" : "");
}

}  // namespace mtile
