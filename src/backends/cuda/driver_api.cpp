// Loads the CUDA driver with dlopen and resolves each function by its exported (versioned) symbol.
#include "backends/cuda/driver_api.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include "mtile/types.hpp"

namespace mtile::cuda {
namespace {

struct LoadedDriver {
  DriverApi api;
  std::string error;  // empty when usable
};

// For results that cuInit gives where cuGetErrorName has no answer (the toolkit's stub library).
const char* startup_result(CUresult r) {
  switch (r) {
    case 34: return "CUDA_ERROR_STUB_LIBRARY (libcuda.so.1 is the toolkit's stub, not a driver)";
    case 46: return "CUDA_ERROR_DEVICE_UNAVAILABLE (the devices are busy or unavailable)";
    case 100: return "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)";
    case 803: return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (the driver and kernel module versions differ)";
    default: return nullptr;
  }
}

std::string describe(const DriverApi& api, CUresult r) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (api.cuGetErrorName && api.cuGetErrorName(r, &name) != CUDA_SUCCESS) name = nullptr;
  if (api.cuGetErrorString && api.cuGetErrorString(r, &text) != CUDA_SUCCESS) text = nullptr;
  if (name) return fmt::format("{} ({})", name, text ? text : "no description");
  if (const char* known = startup_result(r)) return known;
  return fmt::format("CUresult {}", r);
}

LoadedDriver load_driver() {
  LoadedDriver d;
  // The library is never closed: handles into it live as long as the process.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    d.error = fmt::format("the CUDA driver library libcuda.so.1 can't be loaded ({}); is an NVIDIA driver installed?",
                          why ? why : "not found");
    return d;
  }
  std::string missing;
#define MTILE_CUDA_DRIVER_RESOLVE(name, signature)                                 \
  d.api.name = reinterpret_cast<std::add_pointer_t<signature>>(dlsym(lib, #name)); \
  if (!d.api.name) missing += std::string(missing.empty() ? "" : ", ") + #name;
  MTILE_CUDA_DRIVER_FUNCTIONS(MTILE_CUDA_DRIVER_RESOLVE)
#undef MTILE_CUDA_DRIVER_RESOLVE
  if (!missing.empty()) {
    d.error =
        fmt::format("the CUDA driver in libcuda.so.1 lacks {}: it is too old for mtile, update the driver", missing);
    return d;
  }
  if (CUresult r = d.api.cuInit(0); r != CUDA_SUCCESS) d.error = "cuInit failed: " + describe(d.api, r);
  return d;
}

const LoadedDriver& loaded() {
  static const LoadedDriver d = load_driver();
  return d;
}

}  // namespace

const DriverApi& driver() {
  const LoadedDriver& d = loaded();
  if (!d.error.empty()) throw Error(d.error);
  return d.api;
}

bool driver_available(std::string* why) {
  const LoadedDriver& d = loaded();
  if (why) *why = d.error;
  return d.error.empty();
}

std::string result_text(CUresult r) {
  return describe(loaded().api, r);
}

void check(CUresult r, const char* call) {
  if (r != CUDA_SUCCESS) throw DeviceError(fmt::format("{} failed: {}", call, result_text(r)));
}

std::string driver_version() {
  int v = 0;
  MTILE_CU(cuDriverGetVersion, &v);
  return fmt::format("{}.{}", v / 1000, v % 1000 / 10);
}

}  // namespace mtile::cuda
