/* mtile's C ABI (libmtile_c.so): list the registered kernels, read their parameters and contract,
 * and launch one on memory the caller owns, on the caller's stream. For bindings in Python, Rust,
 * Swift or anything that calls C.
 *
 *   const mtile_kernel* k;
 *   if (mtile_kernel_find("rms_norm_residual", &k) != MTILE_OK) puts(mtile_last_error());
 *   const DLTensor* t[] = {&x, &residual, &w, &out, &eps};   // one per tensor parameter, in order
 *   uint32_t dims[] = {rows, n};                              // the kernel's dims, in its order
 *   int rc = mtile_launch(k, t, 5, dims, 2, NULL, 0, MTILE_DTYPE_AUTO, (uint64_t)cuda_stream);
 *
 * Every function that can fail returns an mtile_status and never throws or aborts; after a
 * failure, mtile_last_error() gives the message (naming the kernel, the parameter, the rule and
 * the values). Tensors are borrowed for the call: mtile keeps no reference after it returns.
 * CPU tensors (kDLCPU) run on the CPU engine, at once; CUDA tensors (kDLCUDA) on the CUDA backend
 * of their device, queued on `stream`. The kernel handles and strings stay valid for the process.
 * Everything is thread-safe. */
#ifndef MTILE_MTILE_H
#define MTILE_MTILE_H

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MTILE_API __attribute__((visibility("default")))
#else
#define MTILE_API
#endif

/* Raised when a function or a field changes meaning; additions keep it. */
#define MTILE_ABI_VERSION 3

/* The same codes as the `mtile` command's exit status. */
typedef enum mtile_status {
  MTILE_OK = 0,
  MTILE_ERROR_USER = 2,     /* a bad request: unknown kernel, wrong tensor, violated contract */
  MTILE_ERROR_INTERNAL = 3, /* mtile broke its own rules: a bug to report */
  MTILE_ERROR_DEVICE = 4,   /* the device or the host failed or ran out of memory */
} mtile_status;

/* Element types. MTILE_DTYPE_AUTO asks mtile_launch to take the kernel's variant from the
 * tensors. */
typedef enum mtile_dtype {
  MTILE_DTYPE_AUTO = 0,
  MTILE_DTYPE_F32 = 1,
  MTILE_DTYPE_F16 = 2,
  MTILE_DTYPE_BF16 = 3,
  MTILE_DTYPE_U32 = 4,
  MTILE_DTYPE_I32 = 5,
  MTILE_DTYPE_U64 = 6,
  MTILE_DTYPE_I64 = 7,
  MTILE_DTYPE_U8 = 8, /* memory only (tensors), as the next four */
  MTILE_DTYPE_I8 = 9,
  MTILE_DTYPE_U16 = 10,
  MTILE_DTYPE_I16 = 11,
  MTILE_DTYPE_F8E4M3 = 12, /* fp8 e4m3 ("fn": no infinities, largest 448) */
  MTILE_DTYPE_F8E5M2 = 13,
} mtile_dtype;

typedef enum mtile_param_kind {
  MTILE_PARAM_TENSOR = 0,
  MTILE_PARAM_CONSTEXPR = 1, /* a u32 known per launch: its value comes from the dims */
  MTILE_PARAM_SCALAR = 2,    /* a value passed with each launch (the `scalars` of mtile_launch) */
} mtile_param_kind;

typedef enum mtile_param_role {
  MTILE_ROLE_IN = 0,
  MTILE_ROLE_OUT = 1,
  MTILE_ROLE_INOUT = 2, /* read and written in place */
} mtile_param_role;

/* The texts mtile_kernel_text gives: what `mtile list` shows. */
typedef enum mtile_text {
  MTILE_TEXT_SUMMARY = 0,       /* "fused RMSNorm + residual add: ..." */
  MTILE_TEXT_FAMILY = 1,        /* "norm" */
  MTILE_TEXT_DISPATCH = 2,      /* "grid = rows, tpg = threads" */
  MTILE_TEXT_PRECONDITIONS = 3, /* the contract's rules, joined by "; " */
  MTILE_TEXT_CONFIG = 4,        /* meta-parameters and their rules, joined by "; " ("" when none) */
  MTILE_TEXT_SIZES = 5,         /* elements of each tensor, "x = rows * n; w = n; ..." */
} mtile_text;

/* A registered kernel. Handles are never freed: kernels stay registered for the process. */
typedef struct mtile_kernel mtile_kernel;

typedef struct mtile_param {
  const char* name; /* valid for the process */
  int32_t kind;     /* mtile_param_kind */
  int32_t role;     /* mtile_param_role; MTILE_ROLE_IN for scalars */
  int32_t dtype;    /* element type in the variant asked for (MTILE_DTYPE_U32 for constexprs) */
} mtile_param;

/* A tensor given by address: `elements` contiguous elements of `dtype` from `address`, on the
 * host (device -1) or on CUDA device `device`. For bindings that read their framework's tensors
 * themselves (mtile's Python package does, for PyTorch); everything else passes DLTensors. */
typedef struct mtile_tensor {
  uint64_t address;
  uint64_t elements;
  int32_t dtype;  /* mtile_dtype, not AUTO */
  int32_t device; /* -1: host memory (CPU engine); N >= 0: CUDA device N */
} mtile_tensor;

MTILE_API int32_t mtile_abi_version(void);
MTILE_API const char* mtile_version(void); /* "0.2.0" */
/* This thread's message of its latest failed call ("" before any); valid until its next failure. */
MTILE_API const char* mtile_last_error(void);
MTILE_API const char* mtile_dtype_name(int32_t dtype); /* "f32", ...; "?" for an unknown code */

/* The registry: the standard library, then kernels registered since (mtile_load_library), in
 * registration order. */
MTILE_API int mtile_kernel_count(size_t* count);
MTILE_API int mtile_kernel_at(size_t index, const mtile_kernel** kernel);
/* MTILE_ERROR_USER, listing the known names, when there is no such kernel. */
MTILE_API int mtile_kernel_find(const char* name, const mtile_kernel** kernel);

/* Plain reads of a kernel; NULL, 0 or MTILE_DTYPE_AUTO for a NULL kernel or an index out of range. */
MTILE_API const char* mtile_kernel_name(const mtile_kernel* kernel);
MTILE_API const char* mtile_kernel_text(const mtile_kernel* kernel, int32_t what);
MTILE_API size_t mtile_kernel_dim_count(const mtile_kernel* kernel);
MTILE_API const char* mtile_kernel_dim(const mtile_kernel* kernel, size_t index);
MTILE_API size_t mtile_kernel_dtype_count(const mtile_kernel* kernel);
MTILE_API int32_t mtile_kernel_dtype(const mtile_kernel* kernel, size_t index);
MTILE_API size_t mtile_kernel_param_count(const mtile_kernel* kernel);
/* Parameter `index` (tensors and scalars, in the kernel's order) as the variant `dtype` has it:
 * a generic kernel's tensors mostly follow the variant, some are fixed (eps_buf is always f32).
 * The first call per kernel traces its variants. */
MTILE_API int mtile_kernel_param(const mtile_kernel* kernel, size_t index, int32_t dtype, mtile_param* param);

/* Launches `kernel`: `tensors` has one DLTensor per tensor parameter, in parameter order (the other
 * parameters are skipped); `dims` has the value of each of the kernel's dims, in mtile_kernel_dim
 * order; `scalars` has the value of each scalar parameter (MTILE_PARAM_SCALAR), in parameter order
 * (integers must be exact; f16/bf16 values are rounded to their type). `dtype` picks the variant; MTILE_DTYPE_AUTO
 * takes the one whose parameter types match the tensors. Each tensor must be compact row-major (strides NULL or the
 * compact ones; byte_offset is honoured), hold exactly the elements the kernel's sizes give for these dims, and be on
 * the same device as the others. Before anything runs the kernel's contract is checked for these dims on that device.
 * `stream` is a CUstream of that device (0: the legacy default stream; a stream being captured into a CUDA graph
 * records the launch), and must be 0 for CPU tensors. The calling thread's current CUDA context is left as it was. The
 * first launch of a (kernel, variant, dims, device) compiles it; launch once before capturing a CUDA graph. */
MTILE_API int mtile_launch(const mtile_kernel* kernel, const DLTensor* const* tensors, size_t num_tensors,
                           const uint32_t* dims, size_t num_dims, const double* scalars, size_t num_scalars,
                           int32_t dtype, uint64_t stream);
/* mtile_launch with tensors given by address (mtile_tensor). */
MTILE_API int mtile_launch_tensors(const mtile_kernel* kernel, const mtile_tensor* tensors, size_t num_tensors,
                                   const uint32_t* dims, size_t num_dims, const double* scalars, size_t num_scalars,
                                   int32_t dtype, uint64_t stream);

/* mtile_launch_tensors with all its arguments in one block of memory, for foreign-function callers
 * that pay per argument (Python's ctypes: about 0.15 us each). `call` holds, packed without padding
 * (read with memcpy: no alignment is needed), an mtile_call, then its num_tensors mtile_tensor
 * records, its num_dims uint32_t dims and its num_scalars doubles. */
typedef struct mtile_call {
  const mtile_kernel* kernel;
  uint64_t stream;
  int32_t dtype;
  uint32_t num_tensors;
  uint32_t num_dims;
  uint32_t num_scalars;
} mtile_call;
MTILE_API int mtile_launch_packed(const void* call);

/* Loads a shared library of kernels: dlopen(path), then calls its
 *   extern "C" void mtile_register_kernels(void);
 * if it has one, which calls mtile::register_kernel (C++, <mtile/mtile.hpp>) for each kernel.
 * Build it against the headers and libmtile_c.so that this library came with (mtile's Python
 * package: mtile.include_dir(), mtile.library_dir()). Errors of mtile_register_kernels are
 * reported here; a library whose static initializers register kernels needs no entry point, but
 * an error there ends the process. Loading a library again does nothing. `registered` (may be
 * NULL) gets how many kernels the library added. */
MTILE_API int mtile_load_library(const char* path, size_t* registered);

#ifdef __cplusplus
}
#endif

#endif /* MTILE_MTILE_H */
