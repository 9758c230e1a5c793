// The host's physical memory, for refusing allocations that could only end in the OOM killer.
#pragma once
#include <unistd.h>

#include <cstdint>

namespace mtile {

inline uint64_t host_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : UINT64_MAX;
}

}  // namespace mtile
