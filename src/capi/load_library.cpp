// mtile_load_library: kernels from a shared library the caller names (see mtile.h for the entry
// point). Loads are serialised; a library is registered once however often it is loaded.
#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>
#include <set>

#include "capi/kernel_table.hpp"
#include "capi/status.hpp"

extern "C" int mtile_load_library(const char* path, size_t* registered) {
  using namespace mtile;
  return capi::guard([&] {
    if (!path) throw Error("mtile_load_library: path is NULL");
    static std::mutex mu;
    static std::set<void*> loaded;  // dlopen handles whose entry point ran
    std::lock_guard lock(mu);
    size_t before = capi::kernel_count();
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);  // runs its static initializers
    if (!handle) throw Error(fmt::format("can't load kernel library {}: {}", path, dlerror()));
    if (loaded.insert(handle).second) {
      if (auto entry = reinterpret_cast<void (*)()>(dlsym(handle, "mtile_register_kernels"))) {
        try {
          entry();
        } catch (const Error& e) {
          throw Error(fmt::format("kernel library {}: mtile_register_kernels failed: {}", path, e.what()), e.kind());
        } catch (const std::exception& e) {
          throw Error(fmt::format("kernel library {}: mtile_register_kernels failed: {}", path, e.what()));
        }
      }
    } else {
      dlclose(handle);  // drops the reference this call took
    }
    if (registered) *registered = capi::kernel_count() - before;
  });
}
