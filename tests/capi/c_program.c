/* A C99 program against mtile.h alone: lists the kernels, launches vector_add on the CPU engine
 * on its own arrays through DLTensors, and reads an error back. Exits 0 when all is as expected. */
#include <mtile/mtile.h>
#include <stdio.h>
#include <string.h>

#define N 1000

static int expect(int ok, const char* what) {
  if (!ok) fprintf(stderr, "FAILED: %s (last error: %s)\n", what, mtile_last_error());
  return ok ? 0 : 1;
}

static DLTensor vector_of(float* data, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = 1;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

int main(void) {
  int failures = 0;
  size_t count = 0, i;
  const mtile_kernel* k = NULL;
  static float a[N], b[N], c[N];
  int64_t shape[1] = {N};
  uint32_t dims[1] = {N};
  DLTensor ta = vector_of(a, shape), tb = vector_of(b, shape), tc = vector_of(c, shape);
  const DLTensor* tensors[3] = {&ta, &tb, &tc};
  int wrong = 0;

  failures += expect(mtile_abi_version() == MTILE_ABI_VERSION, "ABI version");
  failures += expect(mtile_kernel_count(&count) == MTILE_OK && count >= 9, "at least the 9 library kernels");
  for (i = 0; i < count; ++i) {
    const mtile_kernel* each = NULL;
    failures += expect(mtile_kernel_at(i, &each) == MTILE_OK && mtile_kernel_name(each) != NULL, "kernel_at");
  }
  failures += expect(mtile_kernel_find("vector_add", &k) == MTILE_OK, "find vector_add");
  failures += expect(strcmp(mtile_kernel_dim(k, 0), "n") == 0, "vector_add's dim is n");

  for (i = 0; i < N; ++i) {
    a[i] = (float)i * 0.5f;
    b[i] = 3.0f - (float)i;
    c[i] = -1.0f;
  }
  failures += expect(mtile_launch(k, tensors, 3, dims, 1, NULL, 0, MTILE_DTYPE_AUTO, 0) == MTILE_OK, "launch vector_add");
  for (i = 0; i < N; ++i) wrong += c[i] != a[i] + b[i];
  failures += expect(wrong == 0, "c = a + b");

  dims[0] = N + 1; /* the tensors hold N: refused, naming the tensor */
  failures += expect(mtile_launch(k, tensors, 3, dims, 1, NULL, 0, MTILE_DTYPE_AUTO, 0) == MTILE_ERROR_USER &&
                         strstr(mtile_last_error(), "tensor 'a' has 1000 elements") != NULL,
                     "a launch whose dims disagree with the tensors");
  printf("%s\n", failures ? "C program: FAIL" : "C program: PASS");
  return failures ? 1 : 0;
}
