// Device probe (#10, not CI): do lines loaded with an L2 evict_last policy survive a flush that reads
// 256 MiB normally? Times the plain kernel after a run of the evict_last kernel, under two flushes.
#include "params.h"
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <vector>

#include "common.cuh"
#include "kernel.cu"

using Base = Hints<Plain, Plain, Plain, Plain>;
using AllLast = Hints<Last, Last, Last, Plain>;

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
  auto base = [&] { probe_kernel<Base><<<rows, tpg>>>(KARGS); };
  auto last = [&] { probe_kernel<AllLast><<<rows, tpg>>>(KARGS); };
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
