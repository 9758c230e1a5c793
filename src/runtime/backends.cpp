// Backend selection: the CPU engine always; CUDA when its backend is built and a device opens.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mtile/runtime.hpp"

namespace mtile {

namespace cuda {
std::unique_ptr<Backend> make_cuda_backend(int ordinal);
}

std::vector<std::string> backend_names() {
  return {"cpu", "cuda"};
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend(CpuOptions{});
  if (name == "cpu:sanitize") return make_cpu_backend(CpuOptions{.sanitize = true});  // docs/reliability.md
  if (name == "cuda") return cuda::make_cuda_backend(0);
  if (name.rfind("cuda:", 0) == 0) {
    std::string n = name.substr(5);
    if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos)
      throw Error(fmt::format("backend '{}': expected cuda:N with N a device number", name));
    return cuda::make_cuda_backend(std::stoi(n));
  }
  throw Error(
      fmt::format("unknown backend '{}' (known: {}, cpu:sanitize, cuda:N)", name, fmt::join(backend_names(), ", ")));
}

std::string default_backend_name() {
  try {
    cuda::make_cuda_backend(0);
    return "cuda";
  } catch (const Error&) {
    return "cpu";
  }
}

}  // namespace mtile
