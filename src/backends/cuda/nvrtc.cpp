// NVRTC through dlopen: nothing links against the toolkit, so mtile starts where it is missing.
#include "backends/cuda/nvrtc.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <set>
#include <type_traits>

#include "mtile/types.hpp"

namespace mtile::cuda {
namespace {

struct NvrtcApi {
#define MTILE_NVRTC_MEMBER(name, signature) std::add_pointer_t<signature> name = nullptr;
  MTILE_NVRTC_FUNCTIONS(MTILE_NVRTC_MEMBER)
#undef MTILE_NVRTC_MEMBER
};

struct LoadedNvrtc {
  NvrtcApi api;
  std::string version;  // "13.0"
  std::string error;    // empty when usable
};

// An explicit CUDA_HOME wins; then the loader's search path; then the default install.
std::vector<std::string> candidates() {
  const char* names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  std::vector<std::string> paths;
  if (const char* home = std::getenv("CUDA_HOME"); home && *home)
    for (const char* dir : {"/lib64/", "/lib/"})
      for (const char* n : names) paths.push_back(std::string(home) + dir + n);
  for (const char* n : names) paths.push_back(n);
  for (const char* n : names) paths.push_back(std::string("/usr/local/cuda/lib64/") + n);
  return paths;
}

LoadedNvrtc load_nvrtc() {
  LoadedNvrtc n;
  void* lib = nullptr;
  std::string tried;
  for (const std::string& path : candidates()) {
    if ((lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
    tried += "\n  " + path;
  }
  if (!lib) {
    n.error = "NVRTC (the CUDA toolkit's runtime compiler) can't be loaded; tried:" + tried +
              "\nInstall the CUDA toolkit or set CUDA_HOME.";
    return n;
  }
  std::string missing;
#define MTILE_NVRTC_RESOLVE(name, signature)                                       \
  n.api.name = reinterpret_cast<std::add_pointer_t<signature>>(dlsym(lib, #name)); \
  if (!n.api.name) missing += std::string(missing.empty() ? "" : ", ") + #name;
  MTILE_NVRTC_FUNCTIONS(MTILE_NVRTC_RESOLVE)
#undef MTILE_NVRTC_RESOLVE
  if (!missing.empty()) {
    n.error = "the NVRTC library found lacks " + missing;
    return n;
  }
  int major = 0, minor = 0;
  if (n.api.nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) {
    n.error = "nvrtcVersion failed";
    return n;
  }
  n.version = fmt::format("{}.{}", major, minor);
  return n;
}

const LoadedNvrtc& loaded() {
  static const LoadedNvrtc n = load_nvrtc();
  return n;
}

const NvrtcApi& nvrtc() {
  const LoadedNvrtc& n = loaded();
  if (!n.error.empty()) throw Error(n.error);
  return n.api;
}

void check_nvrtc(nvrtcResult r, const char* call) {
  if (r != NVRTC_SUCCESS) throw Error(fmt::format("{} failed: {}", call, nvrtc().nvrtcGetErrorString(r)));
}

std::string program_log(const NvrtcApi& api, nvrtcProgram prog) {
  size_t size = 0;
  if (api.nvrtcGetProgramLogSize(prog, &size) != NVRTC_SUCCESS || size == 0) return "";
  std::string log(size, '\0');
  if (api.nvrtcGetProgramLog(prog, log.data()) != NVRTC_SUCCESS) return "";
  while (!log.empty() && (log.back() == '\0' || std::isspace(static_cast<unsigned char>(log.back())))) log.pop_back();
  return log;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

std::vector<std::string> nvrtc_options(const std::string& arch) {
  // No --use_fast_math: math must keep the precision docs/IR.md promises.
  return {"-std=c++17", "--gpu-architecture=" + arch, "-default-device"};
}

NvrtcResult nvrtc_compile(const std::string& src, const std::string& name, const std::string& arch) {
  const NvrtcApi& api = nvrtc();
  NvrtcResult out;
  out.options = nvrtc_options(arch);
  std::vector<const char*> opts;
  for (const auto& o : out.options) opts.push_back(o.c_str());

  nvrtcProgram prog = nullptr;
  check_nvrtc(api.nvrtcCreateProgram(&prog, src.c_str(), name.c_str(), 0, nullptr, nullptr), "nvrtcCreateProgram");
  struct Destroy {
    const NvrtcApi& api;
    nvrtcProgram& prog;
    ~Destroy() { api.nvrtcDestroyProgram(&prog); }
  } destroy{api, prog};

  nvrtcResult r = api.nvrtcCompileProgram(prog, static_cast<int>(opts.size()), opts.data());
  out.log = program_log(api, prog);
  if (r != NVRTC_SUCCESS) {
    std::string msg = fmt::format("NVRTC could not compile {} for {} ({}; NVRTC {}, options: {})", name, arch,
                                  api.nvrtcGetErrorString(r), loaded().version, join(out.options));
    if (!out.log.empty()) msg += ":\n" + out.log;
    if (std::string lines = source_excerpt(src, out.log); !lines.empty())
      msg += "\nsource lines the log mentions:\n" + lines;
    throw Error(msg);
  }
  size_t size = 0;
  check_nvrtc(api.nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
  out.cubin.resize(size);
  check_nvrtc(api.nvrtcGetCUBIN(prog, out.cubin.data()), "nvrtcGetCUBIN");
  return out;
}

std::string nvrtc_version() {
  nvrtc();
  return loaded().version;
}

bool nvrtc_available(std::string* why) {
  const LoadedNvrtc& n = loaded();
  if (why) *why = n.error;
  return n.error.empty();
}

std::string arch_for(int major, int minor) {
  if (major == 9 && minor == 0) return "sm_90a";
  return fmt::format("sm_{}{}", major, minor);
}

std::string source_excerpt(const std::string& src, const std::string& log) {
  constexpr int kContext = 2;          // lines shown either side
  constexpr size_t kMaxMentions = 10;  // a cascade of errors shouldn't print the whole file
  std::set<int> mentioned;
  for (size_t p = log.find("): "); p != std::string::npos && mentioned.size() < kMaxMentions;
       p = log.find("): ", p + 1)) {
    size_t b = p;
    while (b > 0 && std::isdigit(static_cast<unsigned char>(log[b - 1]))) --b;
    if (b == p || b == 0 || log[b - 1] != '(' || p - b > 9) continue;
    mentioned.insert(std::stoi(log.substr(b, p - b)));
  }
  std::vector<std::string> lines;
  for (size_t start = 0; start <= src.size();) {
    size_t end = src.find('\n', start);
    if (end == std::string::npos) end = src.size();
    lines.push_back(src.substr(start, end - start));
    start = end + 1;
  }
  std::set<int> shown;
  for (int m : mentioned)
    for (int l = m - kContext; l <= m + kContext; ++l)
      if (l >= 1 && l <= static_cast<int>(lines.size())) shown.insert(l);
  std::string out;
  int previous = 0;
  for (int l : shown) {
    if (previous && l != previous + 1) out += "  ...\n";
    out += fmt::format("{} {:>5} | {}\n", mentioned.count(l) ? '>' : ' ', l, lines[l - 1]);
    previous = l;
  }
  return out;
}

}  // namespace mtile::cuda
