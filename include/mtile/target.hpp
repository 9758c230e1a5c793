// Target: the facts about a device that passes, contracts and dispatch rules need. A CUDA backend
// reads them off its device; Metal's are fixed per Apple GPU family; the CPU engine has its own.
// Nothing else in mtile writes 32, 1024 or 16 for these.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mtile/rule.hpp"

namespace mtile {

struct Target {
  std::string backend = "cpu";  // "cpu", "cuda", "metal": which code generator and runtime
  std::string name = "cpu";     // "sm_90a", "apple9", "cpu": what the code is built for
  std::string device;           // the device it was read from, e.g. "NVIDIA H100 80GB HBM3"; "" when fixed
  uint32_t simd_width = 32;     // lanes of a simdgroup (a CUDA warp)
  uint32_t max_threads_per_threadgroup = 1024;
  std::array<uint64_t, 3> max_grid{4294967295u, 65535, 65535};  // threadgroups along x, y, z
  uint32_t max_vector_bytes = 16;                      // widest single memory access; 0: the pipeline forms none
  uint32_t buffer_alignment = 16;                      // every tensor's address is a multiple of it
  uint32_t shared_memory_per_threadgroup = 48 * 1024;  // bytes of threadgroup memory
  uint32_t multiprocessors = 1;                        // SMs (CUDA), GPU cores (Apple), host threads (CPU)
  uint32_t max_threads_per_multiprocessor = 2048;      // resident threads on one multiprocessor
  uint32_t max_threadgroups_per_multiprocessor = 32;   // resident threadgroups on one multiprocessor
  uint32_t registers_per_multiprocessor = 65536;       // 32-bit registers of one; 0 where not known
  bool async_mma = false;  // IR mma_async (a warpgroup's MMA from threadgroup memory): sm_90a's wgmma, the CPU engine
  // copy_async runs alongside the thread's later work (cp.async: CUDA sm_80 and newer), so staging
  // device memory through threadgroup buffers keeps more of it in flight; the CPU engine (which
  // runs every path the CUDA code takes) says so too; Metal copies when it issues one.
  bool async_copy = false;
  // copy_tile (a box of a tensor into threadgroup memory by one thread): CUDA sm_90's tensor memory
  // accelerator, and the CPU engine; Metal has none.
  bool tile_copy = false;

  // The CPU engine on this host.
  static Target cpu();
  // A CUDA GPU by architecture, with the facts of its flagship part ("sm_90a": H100 SXM, 132
  // SMs; "sm_80": A100, 108 SMs), for emitting code without a device. A backend on a real device
  // reads its own.
  static Target cuda(const std::string& arch);
  // An Apple GPU family: "apple7" (M1), "apple8" (M2), "apple9" (M3, M4). Multiprocessors are the
  // family's base part's GPU cores.
  static Target metal(const std::string& family);
  // "cpu", "cuda", "cuda:sm_80", "metal", "metal:apple8" (the first of each kind by default).
  static Target named(const std::string& spec);
  static std::vector<std::string> known_names();

  // Threadgroups of `tpg` threads that can be resident at once on the whole device.
  uint64_t resident_threadgroups(uint32_t tpg) const;
  // The facts as rule bindings: simd_width, max_tpg, sm_count, max_threads_per_sm, max_tgs_per_sm,
  // registers_per_sm, vector_bytes, shared_memory, buffer_alignment, max_grid, max_grid_y, max_grid_z, async_mma,
  // async_copy and tile_copy (0 or 1).
  void bind(rule::Bindings& b) const;
  static const std::vector<std::string>& binding_names();
  // What the pass pipeline's output depends on: part of the lowered-IR cache key.
  std::string pipeline_key() const;
  // One line for people: "cuda sm_90a (NVIDIA H100 80GB HBM3): 132 SMs, ...".
  std::string describe() const;
};

}  // namespace mtile
