// Device probe (#9, not CI): how fast can a kernel read 32 MiB (gemv's w at 4096 x 4096) or 128
// MiB (decode's K and V at one sequence of 32768 tokens) once, by access pattern? Each kernel
// reads the whole buffer in 16-byte loads and xors it into a sink; timed with events after a
// flush that reads 256 MiB (evict_last, then evict_first), median of 50.
//   grid_stride: consecutive threads consecutive words, the grid striding over the buffer;
//   row_per_warp: a warp a row of R bytes (gemv's FMA body, one column a simdgroup), optionally
//     starting at a chunk rotated by the warp's index;
//   block_segment: a threadgroup a contiguous segment, its threads consecutive words.
// U is the loads a thread has in flight a loop trip.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common.cuh"

template <int U>
__global__ void grid_stride(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = 0;
  size_t t = size_t(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += t * U) {
    uint4 v[U];
#pragma unroll
    for (int j = 0; j < U; ++j) v[j] = i + j * t < n ? p[i + j * t] : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < U; ++j) acc ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

template <int U>
__global__ void row_per_warp(const uint4* p, unsigned row_words, int rotate, unsigned* sink) {
  unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  const uint4* row = p + size_t(warp) * row_words;
  unsigned trips = row_words / (32 * U), first = rotate ? warp % trips : 0;
  unsigned acc = 0;
  for (unsigned t = 0; t < trips; ++t) {
    unsigned at = ((t + first) % trips) * 32 * U + lane;
    uint4 v[U];
#pragma unroll
    for (int j = 0; j < U; ++j) v[j] = row[at + j * 32];
#pragma unroll
    for (int j = 0; j < U; ++j) acc ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

template <int U>
__global__ void block_segment(const uint4* p, unsigned seg_words, unsigned* sink) {
  const uint4* seg = p + size_t(blockIdx.x) * seg_words;
  unsigned acc = 0;
  for (unsigned i = threadIdx.x; i < seg_words; i += blockDim.x * U) {
    uint4 v[U];
#pragma unroll
    for (int j = 0; j < U; ++j)
      v[j] = i + j * blockDim.x < seg_words ? seg[i + j * blockDim.x] : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < U; ++j) acc ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

int main() {
  size_t fb = size_t(256) << 20, big = size_t(128) << 20;
  uint4 *flush, *buf;
  unsigned* sink;
  cudaMalloc(&flush, fb);
  cudaMalloc(&buf, big);
  cudaMalloc(&sink, 4);
  cudaMemset(flush, 1, fb);
  cudaMemset(buf, 3, big);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 200; ++i) flush_plain<<<528, 512>>>(flush, fb / 16, sink);  // clocks up
  auto run = [&](const char* what, size_t bytes, auto timed) {
    std::vector<float> t;
    for (int i = 0; i < 50; ++i) {
      flush_strong<<<528, 512>>>(flush, fb / 16, sink);
      cudaEventRecord(a);
      timed();
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      t.push_back(ms * 1000);
    }
    std::sort(t.begin(), t.end());
    float us = t[t.size() / 2];
    printf("%-52s %6zu MiB %8.2f us %7.0f GB/s (min %.2f)\n", what, bytes >> 20, us, bytes / us / 1e3, t[0]);
  };
  {  // the reference (bench/peers.py's): a 512 MiB device-to-device copy after the same flush, read + write counted
    size_t cb = size_t(512) << 20;
    void *src, *dst;
    cudaMalloc(&src, cb);
    cudaMalloc(&dst, cb);
    run("copy 512 MiB (bytes: read + write)", 2 * cb, [&] { cudaMemcpyAsync(dst, src, cb, cudaMemcpyDeviceToDevice); });
    cudaFree(src);
    cudaFree(dst);
  }
  // gemv's w at 4096 x 4096 (32 MiB) and 14336 x 4096 (112 MiB); decode's K and V at 32768 tokens.
  for (size_t bytes : {size_t(32) << 20, size_t(112) << 20, big}) {
    size_t n = bytes / 16;
    char name[128];
    for (int g : {132 * 4, 132 * 8, 132 * 16}) {
      snprintf(name, sizeof name, "grid_stride grid %d x 256 U4", g);
      run(name, bytes, [&] { grid_stride<4><<<g, 256>>>(buf, n, sink); });
      snprintf(name, sizeof name, "grid_stride grid %d x 256 U8", g);
      run(name, bytes, [&] { grid_stride<8><<<g, 256>>>(buf, n, sink); });
    }
    for (unsigned row : {8192u, 16384u, 65536u})
      for (int rot : {0, 1}) {
        unsigned words = row / 16, rows = bytes / row;
        snprintf(name, sizeof name, "row_per_warp R %u rot %d U2 (128 thr)", row, rot);
        run(name, bytes, [&] { row_per_warp<2><<<rows / 4, 128>>>(buf, words, rot, sink); });
        snprintf(name, sizeof name, "row_per_warp R %u rot %d U8 (128 thr)", row, rot);
        run(name, bytes, [&] { row_per_warp<8><<<rows / 4, 128>>>(buf, words, rot, sink); });
      }
    for (unsigned blocks : {132u, 264u, 528u, 1024u, 2048u})
      for (int threads : {256, 512}) {
        unsigned words = n / blocks;
        snprintf(name, sizeof name, "block_segment %u x %d U4", blocks, threads);
        run(name, bytes, [&] { block_segment<4><<<blocks, threads>>>(buf, words, sink); });
        snprintf(name, sizeof name, "block_segment %u x %d U8", blocks, threads);
        run(name, bytes, [&] { block_segment<8><<<blocks, threads>>>(buf, words, sink); });
      }
  }
  return 0;
}
