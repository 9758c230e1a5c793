// Device probe (#10, not CI): do lines loaded with an L2 evict_last policy survive a flush that reads
// 256 MiB normally? Times the plain kernel after a run of the evict_last kernel, under two flushes.
#include "params.h"
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <vector>

__device__ __forceinline__ uint4 ld_plain(const void* p) { return *reinterpret_cast<const uint4*>(p); }
#define POLICY_LOAD(NAME, POL, L1)                                                                  \
  __device__ __forceinline__ uint4 NAME(const void* p) {                                           \
    uint4 v;                                                                                        \
    asm volatile("{.reg .b64 pol; createpolicy.fractional.L2::" POL ".b64 pol, 1.0;\n"              \
        "ld.global.L1::" L1 ".L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], pol;}"                     \
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));                                     \
    return v;                                                                                       \
  }
POLICY_LOAD(ld_first, "evict_first", "evict_first")
POLICY_LOAD(ld_last, "evict_last", "evict_last")
__device__ __forceinline__ void st_plain(void* p, uint4 v) { *reinterpret_cast<uint4*>(p) = v; }

#define KNAME k_base
#define LDX1 ld_plain
#define LDX ld_plain
#define LDR ld_plain
#define LDW ld_plain
#define STO st_plain
#include "kernel.cu"
#undef KNAME
#undef LDX1
#undef LDX
#undef LDR
#define KNAME k_last
#define LDX1 ld_last
#define LDX ld_last
#define LDR ld_last
#include "kernel.cu"

__global__ void flush_plain(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}
// Reads the buffer with evict_last (displacing older evict_last lines), then again with evict_first
// (demoting its own lines, so that the timed kernel's lines displace them first).
__global__ void flush_strong(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    uint4 v = ld_last(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    uint4 v = ld_first(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

int main() {
  const unsigned rows = ROWS, n = N, tpg = TPG;
  size_t elems = size_t(rows) * n;
  uint16_t *x, *res, *w, *out; float* eps; uint4* flush; unsigned* sink;
  size_t fb = size_t(256) << 20;
  cudaMalloc(&x, elems * 2); cudaMalloc(&res, elems * 2); cudaMalloc(&out, elems * 2);
  cudaMalloc(&w, n * 2); cudaMalloc(&eps, 4); cudaMalloc(&flush, fb); cudaMalloc(&sink, 4);
  cudaMemset(x, 0x3f, elems * 2); cudaMemset(res, 0x3f, elems * 2); cudaMemset(w, 0x3f, n * 2);
  float e = 1e-6f; cudaMemcpy(eps, &e, 4, cudaMemcpyHostToDevice);
  cudaMemset(flush, 1, fb);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 300; ++i) flush_plain<<<528, 512>>>(flush, fb / 16, sink);
  auto run = [&](const char* what, auto before, auto flusher, auto timed) {
    std::vector<float> t;
    for (int i = 0; i < 40; ++i) {
      before(); flusher();
      cudaEventRecord(a); timed(); cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); t.push_back(ms * 1000);
    }
    std::sort(t.begin(), t.end());
    printf("  %-58s %7.2f us (min %.2f)\n", what, t[t.size() / 2], t[0]);
  };
  auto base = [&] { k_base<<<rows, tpg>>>(KARGS); };
  auto last = [&] { k_last<<<rows, tpg>>>(KARGS); };
  auto none = [] {};
  auto fp = [&] { flush_plain<<<528, 512>>>(flush, fb / 16, sink); };
  auto fs = [&] { flush_strong<<<528, 512>>>(flush, fb / 16, sink); };
  printf("%s %ux%u\n", KLABEL, rows, n);
  for (int rep = 0; rep < 2; ++rep) {
    run("plain after plain, plain flush", base, fp, base);
    run("plain after evict_last kernel, plain flush", last, fp, base);
    run("plain after plain, strong flush", base, fs, base);
    run("plain after evict_last kernel, strong flush", last, fs, base);
    run("evict_last kernel timed, plain flush", none, fp, last);
    run("evict_last kernel timed, strong flush", none, fs, last);
    run("plain kernel timed, no flush (L2 warm)", none, none, base);
  }
  return 0;
}
