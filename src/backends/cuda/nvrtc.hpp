// NVRTC, loaded at run time like the driver: CUDA C++ source in, a CUBIN for one GPU arch out.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

struct _nvrtcProgram;  // as nvrtc.h spells it

namespace mtile::cuda {

struct NvrtcResult {
  std::vector<char> cubin;
  std::string log;                   // NVRTC's messages (warnings), may be empty
  std::vector<std::string> options;  // exactly what NVRTC was given
};

// The options mtile compiles with for `arch` ("sm_90a"). Part of the module cache key.
std::vector<std::string> nvrtc_options(const std::string& arch);

// Compiles `src` (program `name`, e.g. "vector_add_f32.cu") to a CUBIN for `arch`. On failure
// throws Error with NVRTC's log and the numbered source lines around each line the log names.
NvrtcResult nvrtc_compile(const std::string& src, const std::string& name, const std::string& arch);

// "13.0". Throws Error when NVRTC can't be loaded.
std::string nvrtc_version();
// True when NVRTC loads; otherwise `why` says what was tried.
bool nvrtc_available(std::string* why);

// The arch NVRTC targets for a compute capability: "sm_90a" for 9.0 (Hopper's arch-specific
// features: wgmma, setmaxnreg), "sm_<major><minor>" otherwise.
std::string arch_for(int major, int minor);

// The lines of `src` around each "<name>(<line>): " that `log` mentions, numbered, the mentioned
// lines marked with '>'. Empty when the log names no line.
std::string source_excerpt(const std::string& src, const std::string& log);

// The NVRTC functions mtile loads, as X(symbol, signature); matched against nvrtc.h by
// tests/unit/cuda_abi_test.cpp.
using nvrtcResult = int;
using nvrtcProgram = _nvrtcProgram*;
constexpr nvrtcResult NVRTC_SUCCESS = 0;
#define MTILE_NVRTC_FUNCTIONS(X)                                                                       \
  X(nvrtcGetErrorString, const char*(nvrtcResult))                                                     \
  X(nvrtcVersion, nvrtcResult(int*, int*))                                                             \
  X(nvrtcCreateProgram,                                                                                \
    nvrtcResult(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*)) \
  X(nvrtcDestroyProgram, nvrtcResult(nvrtcProgram*))                                                   \
  X(nvrtcCompileProgram, nvrtcResult(nvrtcProgram, int, const char* const*))                           \
  X(nvrtcGetProgramLogSize, nvrtcResult(nvrtcProgram, size_t*))                                        \
  X(nvrtcGetProgramLog, nvrtcResult(nvrtcProgram, char*))                                              \
  X(nvrtcGetCUBINSize, nvrtcResult(nvrtcProgram, size_t*))                                             \
  X(nvrtcGetCUBIN, nvrtcResult(nvrtcProgram, char*))

}  // namespace mtile::cuda
