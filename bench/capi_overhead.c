/* Host time of one C ABI launch (mtile_launch_tensors, rms_norm_residual on 1 x 4096 bf16, five
 * tensors) and of the driver calls it makes, on CUDA device 0: the split behind the Python
 * figure in bench/NOTES.md. Each figure is the median over batches of back-to-back calls with no
 * synchronisation inside. Run on the GPU machine: build-dev/capi_overhead (scripts/gpu_check.sh). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtile/mtile.h"

typedef int (*cu_init_t)(unsigned);
typedef int (*cu_device_get_t)(int*, int);
typedef int (*cu_retain_t)(void**, int);
typedef int (*cu_ctx_set_t)(void*);
typedef int (*cu_ctx_get_t)(void**);
typedef int (*cu_alloc_t)(uint64_t*, size_t);
typedef int (*cu_attrs_t)(unsigned, int*, void**, uint64_t);
typedef int (*cu_sync_t)(void);
typedef int (*cu_stream_create_t)(void**, unsigned);
typedef int (*cu_stream_ctx_t)(void*, void**);

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

enum { kBatches = 41, kCalls = 2000 };
static cu_sync_t sync_device;

#define PER_CALL(label, stmt)                           \
  do {                                                  \
    double us[kBatches];                                \
    for (int r = 0; r < kBatches; ++r) {                \
      sync_device();                                    \
      double t0 = now_us();                             \
      for (int i = 0; i < kCalls; ++i) stmt;            \
      us[r] = (now_us() - t0) / kCalls;                 \
    }                                                   \
    qsort(us, kBatches, sizeof us[0], by_value);        \
    printf("| %s | %.2f |\n", label, us[kBatches / 2]); \
  } while (0)

static void* sym(void* lib, const char* name) {
  void* f = dlsym(lib, name);
  if (!f) {
    fprintf(stderr, "capi_overhead: libcuda has no %s\n", name);
    exit(2);
  }
  return f;
}

int main(void) {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  if (!cuda) {
    fprintf(stderr, "capi_overhead: no CUDA driver (%s)\n", dlerror());
    return 2;
  }
  cu_init_t cu_init = (cu_init_t)sym(cuda, "cuInit");
  cu_device_get_t cu_device_get = (cu_device_get_t)sym(cuda, "cuDeviceGet");
  cu_retain_t cu_retain = (cu_retain_t)sym(cuda, "cuDevicePrimaryCtxRetain");
  cu_ctx_set_t cu_ctx_set = (cu_ctx_set_t)sym(cuda, "cuCtxSetCurrent");
  cu_ctx_get_t cu_ctx_get = (cu_ctx_get_t)sym(cuda, "cuCtxGetCurrent");
  cu_alloc_t cu_alloc = (cu_alloc_t)sym(cuda, "cuMemAlloc_v2");
  cu_attrs_t cu_attrs = (cu_attrs_t)sym(cuda, "cuPointerGetAttributes");
  sync_device = (cu_sync_t)sym(cuda, "cuCtxSynchronize");
  cu_stream_create_t cu_stream_create = (cu_stream_create_t)sym(cuda, "cuStreamCreate");
  cu_stream_ctx_t cu_stream_ctx = (cu_stream_ctx_t)sym(cuda, "cuStreamGetCtx");
  int dev = 0;
  void* ctx = NULL;
  if (cu_init(0) || cu_device_get(&dev, 0) || cu_retain(&ctx, dev) || cu_ctx_set(ctx)) {
    fprintf(stderr, "capi_overhead: can't open CUDA device 0\n");
    return 2;
  }
  const uint32_t rows = 1, n = 4096;
  uint64_t x, residual, w, out, eps;
  if (cu_alloc(&x, rows * n * 2) || cu_alloc(&residual, rows * n * 2) || cu_alloc(&w, n * 2) ||
      cu_alloc(&out, rows * n * 2) || cu_alloc(&eps, 4)) {
    fprintf(stderr, "capi_overhead: cuMemAlloc failed\n");
    return 2;
  }
  const mtile_kernel* k = NULL;
  if (mtile_kernel_find("rms_norm_residual", &k)) {
    fprintf(stderr, "capi_overhead: %s\n", mtile_last_error());
    return 2;
  }
  mtile_tensor t[5] = {{x, rows * n, MTILE_DTYPE_BF16, 0},
                       {residual, rows * n, MTILE_DTYPE_BF16, 0},
                       {w, n, MTILE_DTYPE_BF16, 0},
                       {out, rows * n, MTILE_DTYPE_BF16, 0},
                       {eps, 1, MTILE_DTYPE_F32, 0}};
  uint32_t dims[2] = {rows, n};
  /* The inputs are uninitialised: only host time is measured, and the kernel reads what it finds. */
  if (mtile_launch_tensors(k, t, 5, dims, 2, NULL, 0, MTILE_DTYPE_BF16, 0)) {
    fprintf(stderr, "capi_overhead: %s\n", mtile_last_error());
    return 2;
  }
  printf("# C ABI host time per call, rms_norm_residual 1 x 4096 bf16 (median of %d batches of %d)\n", kBatches,
         kCalls);
  printf("| call | us per call |\n|---|---|\n");
  PER_CALL("mtile_launch_tensors (5 tensors)", mtile_launch_tensors(k, t, 5, dims, 2, NULL, 0, MTILE_DTYPE_BF16, 0));
  unsigned char call[sizeof(mtile_call) + sizeof t + sizeof dims];
  mtile_call head = {k, 0, MTILE_DTYPE_BF16, 5, 2, 0};
  memcpy(call, &head, sizeof head);
  memcpy(call + sizeof head, t, sizeof t);
  memcpy(call + sizeof head + sizeof t, dims, sizeof dims);
  PER_CALL("mtile_launch_packed (the same, one block)", mtile_launch_packed(call));
  unsigned type = 0;
  void* owner = NULL;
  int ordinal = 0;
  uint64_t start = 0;
  size_t size = 0;
  int attrs[] = {2 /* MEMORY_TYPE */, 1 /* CONTEXT */, 9 /* DEVICE_ORDINAL */, 11 /* RANGE_START_ADDR */,
                 12 /* RANGE_SIZE */};
  void* values[] = {&type, &owner, &ordinal, &start, &size};
  PER_CALL("  part: cuPointerGetAttributes (5 attributes), one tensor", cu_attrs(5, attrs, values, x));
  PER_CALL("  part: cuPointerGetAttributes (1 attribute), one tensor", cu_attrs(1, attrs, values, x));
  PER_CALL("  part: cuCtxGetCurrent", cu_ctx_get(&owner));
  PER_CALL("  part: cuCtxSetCurrent (the current one)", cu_ctx_set(ctx));
  void* stream = NULL;
  if (cu_stream_create(&stream, 1)) return 2;
  PER_CALL("mtile_launch_tensors (5 tensors) on a created stream",
           mtile_launch_tensors(k, t, 5, dims, 2, NULL, 0, MTILE_DTYPE_BF16, (uint64_t)(uintptr_t)stream));
  PER_CALL("  part: cuStreamGetCtx", cu_stream_ctx(stream, &owner));
  return 0;
}
