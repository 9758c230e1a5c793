// Shared by the device probes (harness.cu, flush.cu; not CI): 16-byte loads and stores under each
// cache policy, the hint sets a probe kernel (transform.py's probe_kernel<H>) is instantiated
// with, and the two L2 flushes.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

#define POLICY_LOAD(NAME, POL)                                                                     \
  struct NAME {                                                                                    \
    static __device__ __forceinline__ uint4 ld(const void* p) {                                    \
      uint4 v;                                                                                     \
      asm volatile("{.reg .b64 pol; createpolicy.fractional.L2::" POL ".b64 pol, 1.0;\n"          \
                   "ld.global.L1::" POL ".L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], pol;}"        \
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));                         \
      return v;                                                                                    \
    }                                                                                              \
  };
POLICY_LOAD(First, "evict_first")
POLICY_LOAD(Last, "evict_last")
#undef POLICY_LOAD
struct Plain {
  static __device__ __forceinline__ uint4 ld(const void* p) { return *reinterpret_cast<const uint4*>(p); }
  static __device__ __forceinline__ void st(void* p, uint4 v) { *reinterpret_cast<uint4*>(p) = v; }
};
struct Cs {  // .cs: evict first in L1 and L2
  static __device__ __forceinline__ uint4 ld(const void* p) { return __ldcs(reinterpret_cast<const uint4*>(p)); }
  static __device__ __forceinline__ void st(void* p, uint4 v) { __stcs(reinterpret_cast<uint4*>(p), v); }
};
struct Lu {  // .lu: last use
  static __device__ __forceinline__ uint4 ld(const void* p) { return __ldlu(reinterpret_cast<const uint4*>(p)); }
};

// The loads of x before the first barrier (X1), after it (X), of the residual (R) and the weights
// (W), and the output's stores (O).
template <class X1, class X, class R, class W, class O = Plain>
struct Hints {
  static __device__ __forceinline__ uint4 x1(const void* p) { return X1::ld(p); }
  static __device__ __forceinline__ uint4 x(const void* p) { return X::ld(p); }
  static __device__ __forceinline__ uint4 r(const void* p) { return R::ld(p); }
  static __device__ __forceinline__ uint4 w(const void* p) { return W::ld(p); }
  static __device__ __forceinline__ void out(void* p, uint4 v) { O::st(p, v); }
};

// Reads n 16-byte words with loads of L, or (Strong) first with evict_last, displacing older
// evict_last lines that a plain read leaves in L2 (flush.cu), then with evict_first, so that the
// timed kernel's lines displace these first.
template <class L>
__device__ __forceinline__ unsigned read_all(const uint4* p, size_t n) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    uint4 v = L::ld(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  return acc;
}
__global__ void flush_plain(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = read_all<Plain>(p, n);
  if (acc == 0x12345678u) *sink = acc;
}
__global__ void flush_strong(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = read_all<Last>(p, n) ^ read_all<First>(p, n);
  if (acc == 0x12345678u) *sink = acc;
}
