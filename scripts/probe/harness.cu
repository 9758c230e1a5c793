// Device probe (#10, not CI): one emitted norm kernel with its row loads/stores under different
// cache hints, timed after flush_strong (common.cuh), median of 60 runs, against a device copy.
#include "params.h"
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.cuh"
#include "kernel.cu"

// The variants: each a hint set for probe_kernel<H>.
using k_base = Hints<Plain, Plain, Plain, Plain>;
using k_res_first = Hints<Plain, Plain, First, Last>;
using k_cs = Hints<Cs, Cs, Cs, Plain>;
using k_triton = Hints<Last, First, First, Last>;  // torch.compile's pattern

int main() {
  const unsigned rows = ROWS, n = N, tpg = TPG;
  size_t elems = size_t(rows) * n;
  std::vector<uint16_t> host(elems);
  uint32_t s = 12345;
  for (auto& h : host) { s = s * 1664525u + 1013904223u; float f = (int(s >> 9) % 2000 - 1000) / 500.0f; uint32_t u; memcpy(&u, &f, 4); h = u >> 16; }
  uint16_t *x, *res, *w, *out, *out_ref; float* eps; uint4* flush; unsigned* sink;
  size_t flush_bytes = size_t(256) << 20;
  cudaMalloc(&x, elems * 2); cudaMalloc(&res, elems * 2); cudaMalloc(&out, elems * 2); cudaMalloc(&out_ref, elems * 2);
  cudaMalloc(&w, n * 2); cudaMalloc(&eps, 4); cudaMalloc(&flush, flush_bytes); cudaMalloc(&sink, 4);
  cudaMemcpy(x, host.data(), elems * 2, cudaMemcpyHostToDevice);
  std::reverse(host.begin(), host.end());
  cudaMemcpy(res, host.data(), elems * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(w, host.data(), n * 2, cudaMemcpyHostToDevice);
  float e = 1e-6f; cudaMemcpy(eps, &e, 4, cudaMemcpyHostToDevice);
  cudaMemset(flush, 1, flush_bytes);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  auto time = [&](auto launch) {
    std::vector<float> t;
    for (int i = 0; i < 70; ++i) {
      flush_strong<<<528, 512>>>(flush, flush_bytes / 16, sink);
      cudaEventRecord(a); launch(); cudaEventRecord(b); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); if (i >= 10) t.push_back(ms * 1000);
    }
    std::sort(t.begin(), t.end()); return t[t.size() / 2];
  };
  // spin up clocks
  for (int i = 0; i < 200; ++i) flush_plain<<<528, 512>>>(flush, flush_bytes / 16, sink);
  float copy = time([&] { cudaMemcpyAsync(out, x, elems * 2, cudaMemcpyDeviceToDevice); });
  double bytes = KBYTES * double(elems) * 2 + n * 2;
  printf("%s %ux%u tpg %u: copy %.1f us (%.0f GB/s)\n", KLABEL, rows, n, tpg, copy, 2.0 * elems * 2 / copy / 1e3);
  std::vector<uint16_t> ref(elems), got(elems);
#define RUN(K) { auto launch = [&] { probe_kernel<K><<<rows, tpg>>>(KARGS); };                                        \
    cudaMemset(out, 0xff, elems * 2); launch(); cudaMemcpy(got.data(), out, elems * 2, cudaMemcpyDeviceToHost); \
    bool same = #K == std::string("k_base") ? (ref = got, true) : got == ref;                    \
    float us = time(launch);                                                                             \
    printf("  %-22s %7.2f us  %6.0f GB/s  %5.1f%% of copy  %s %s\n", #K, us, bytes / us / 1e3,           \
           100 * (bytes / us) / (2.0 * elems * 2 / copy), same ? "same" : "DIFFERS", cudaGetErrorString(cudaGetLastError())); }
  for (int rep = 0; rep < 2; ++rep) {
    RUN(k_base) RUN(k_res_first) RUN(k_cs) RUN(k_triton) 
  }
  return 0;
}
