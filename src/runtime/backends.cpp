// Backend selection: the CPU engine always; CUDA when its backend is built and a device opens.
#include <fmt/format.h>

#include "mtile/runtime.hpp"

namespace mtile {

std::unique_ptr<Backend> make_cpu_backend();
#ifdef MTILE_WITH_CUDA_BACKEND
namespace cuda {
std::unique_ptr<Backend> make_cuda_backend();
}
using cuda::make_cuda_backend;
#endif

std::vector<std::string> backend_names() {
#ifdef MTILE_WITH_CUDA_BACKEND
  return {"cpu", "cuda"};
#else
  return {"cpu"};
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "cuda") {
#ifdef MTILE_WITH_CUDA_BACKEND
    return make_cuda_backend();
#else
    throw Error("backend 'cuda' is not built into this mtile");
#endif
  }
  throw Error(fmt::format("unknown backend '{}' (known: {})", name, fmt::join(backend_names(), ", ")));
}

std::string default_backend_name() {
#ifdef MTILE_WITH_CUDA_BACKEND
  try {
    make_cuda_backend();
    return "cuda";
  } catch (const Error&) {
  }
#endif
  return "cpu";
}

}  // namespace mtile
