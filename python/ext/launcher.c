/* mtile._launcher: the Python package's launch of a kernel on torch tensors, in C.
 *
 * The same work as _launch.launch_torch (read each tensor's address, element count, dtype and
 * device; torch's current stream; mtile_launch_tensors), without the interpreter and without
 * ctypes. Where torch offers DLPack's C exchange API (`torch.Tensor.__dlpack_c_exchange_api__`;
 * torch 2.11 has it) a tensor is read by one C call and the stream by another; elsewhere through
 * the tensor's Python attributes (is_cuda, dtype, is_contiguous(), data_ptr(), ...), ~0.1-0.4 us
 * each on the GPU machine. It takes only the common case, contiguous CUDA or CPU torch
 * tensors, and answers False, having launched nothing, for anything else (another kind of array, a
 * non-contiguous tensor, a dtype mtile lacks, a shape that does not match, a dim past u32): the
 * Python path then runs and names what is wrong. Errors of the launch itself (the contract) are raised
 * here, as the Python path raises them.
 *
 * Built against CPython's limited API (abi3, 3.10+), so that one build loads in every later
 * CPython. It does not link libmtile_c: _capi passes the functions' addresses from the library it
 * loaded (bind), so both use the same copy. */
#include <Python.h>
#include <stdint.h>

#include "mtile/mtile.h"

typedef int (*launch_tensors_fn)(const mtile_kernel*, const mtile_tensor*, size_t, const uint32_t*, size_t,
                                 const double*, size_t, int32_t, uint64_t);
typedef const char* (*last_error_fn)(void);

/* DLPack's C exchange API, as DLPack 1.3's dlpack.h declares it (Debian ships DLPack 0.6, whose
 * DLTensor is the same but which has no exchange API): a table a tensor type publishes as a
 * capsule. Used here: read a tensor into a DLTensor, and the framework's current stream. */
typedef struct {
  struct {
    uint32_t major, minor;
  } version;
  const void* prev_api;
  void* allocate; /* managed tensors: not used here */
  void* managed_tensor_from_py_object_no_sync;
  void* managed_tensor_to_py_object_no_sync;
  int (*dltensor_from_py_object_no_sync)(void* py_object, DLTensor* out);
  int (*current_work_stream)(DLDeviceType device_type, int32_t device_id, void** out_current_stream);
} dlpack_exchange_api;

static launch_tensors_fn launch_tensors;
static last_error_fn last_error;
/* Set by bind(): torch.Tensor, {torch dtype: mtile_dtype}, f(device) -> torch's current raw
 * stream, {status: exception class}. */
static PyObject *tensor_type, *dtype_codes, *current_stream, *errors;
/* Set by bind() where torch has the exchange API: its table, and the types it reads (torch.Tensor,
 * torch.nn.Parameter: exactly those, as a subclass may hold no storage of its own). */
static const dlpack_exchange_api* exchange;
static PyObject *exchange_capsule, *exchange_types;
static PyObject *s_is_cuda, *s_is_cpu, *s_dtype, *s_shape, *s_get_device, *s_is_contiguous, *s_data_ptr, *s_numel;

enum { kMaxTensors = 16, kMaxDims = 8, kMaxScalars = 8 };
enum { kLaunched = 1, kNotTaken = 0, kFailed = -1 };

/* A record made (and checked) by the package: (address, elements, mtile_dtype, device). */
static int read_record(PyObject* t, mtile_tensor* r) {
  if (PyTuple_Size(t) != 4) return kNotTaken;
  r->address = PyLong_AsUnsignedLongLong(PyTuple_GetItem(t, 0));
  r->elements = PyLong_AsUnsignedLongLong(PyTuple_GetItem(t, 1));
  r->dtype = (int32_t)PyLong_AsLong(PyTuple_GetItem(t, 2));
  r->device = (int32_t)PyLong_AsLong(PyTuple_GetItem(t, 3));
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return kNotTaken;
  }
  return kLaunched;
}

/* A tensor as read: its record and, where asked for, its shape. */
typedef struct {
  mtile_tensor record;
  int rank; /* -1: the shape was not read */
  int64_t shape[kMaxDims];
} tensor_view;

/* The product of a shape's extents; kNotTaken past 2^62. */
static int shape_elements(const tensor_view* v, uint64_t* elements) {
  *elements = 1;
  for (int i = 0; i < v->rank; ++i) {
    uint64_t e = (uint64_t)v->shape[i];
    if (e != 0 && *elements > (UINT64_C(1) << 62) / e) return kNotTaken;
    *elements *= e;
  }
  return kLaunched;
}

/* The mtile dtype of a DLPack one (1 lane), or -1. */
static int32_t dlpack_dtype(DLDataType d) {
  static const struct {
    uint8_t code, bits;
    int32_t dtype;
  } known[] = {{kDLFloat, 32, MTILE_DTYPE_F32}, {kDLFloat, 16, MTILE_DTYPE_F16}, {kDLBfloat, 16, MTILE_DTYPE_BF16},
               {kDLInt, 32, MTILE_DTYPE_I32},   {kDLUInt, 32, MTILE_DTYPE_U32},  {kDLInt, 64, MTILE_DTYPE_I64},
               {kDLUInt, 64, MTILE_DTYPE_U64},  {kDLInt, 16, MTILE_DTYPE_I16},   {kDLUInt, 16, MTILE_DTYPE_U16},
               {kDLInt, 8, MTILE_DTYPE_I8},     {kDLUInt, 8, MTILE_DTYPE_U8},    {10, 8, MTILE_DTYPE_F8E4M3},
               {12, 8, MTILE_DTYPE_F8E5M2}}; /* 10, 12: DLPack 1.1's kDLFloat8_e4m3fn, kDLFloat8_e5m2 */
  if (d.lanes != 1) return -1;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i)
    if (d.code == known[i].code && d.bits == known[i].bits) return known[i].dtype;
  return -1;
}

/* Row-major without gaps (an extent of 1 may have any stride; no strides: compact). */
static int is_compact(const DLTensor* dl) {
  int64_t compact = 1;
  for (int i = dl->ndim - 1; i >= 0; --i) {
    if (dl->strides && dl->shape[i] != 1 && dl->strides[i] != compact) return 0;
    compact *= dl->shape[i];
  }
  return 1;
}

/* Through the exchange API: one call fills a DLTensor (the tensor's own shape and strides, no
 * copies). Anything it can't describe, or that mtile does not take here, is declined. */
static int read_exchanged(PyObject* t, tensor_view* v) {
  DLTensor dl;
  if (exchange->dltensor_from_py_object_no_sync(t, &dl) != 0) {
    PyErr_Clear(); /* e.g. a tensor with no storage: the Python path names it */
    return kNotTaken;
  }
  if (dl.device.device_type == kDLCUDA)
    v->record.device = dl.device.device_id;
  else if (dl.device.device_type == kDLCPU)
    v->record.device = -1;
  else
    return kNotTaken;
  v->record.dtype = dlpack_dtype(dl.dtype);
  if (v->record.dtype < 0 || dl.ndim < 0 || dl.ndim > kMaxDims) return kNotTaken;
  if (!is_compact(&dl)) return kNotTaken;
  v->rank = dl.ndim;
  for (int i = 0; i < dl.ndim; ++i) v->shape[i] = dl.shape[i];
  v->record.address = (uint64_t)(uintptr_t)dl.data + dl.byte_offset;
  return shape_elements(v, &v->record.elements);
}

/* obj.name() */
static PyObject* call_method(PyObject* obj, PyObject* name) {
  PyObject* method = PyObject_GetAttr(obj, name);
  if (!method) return NULL;
  PyObject* result = PyObject_CallNoArgs(method);
  Py_DECREF(method);
  return result;
}

/* A u64 from an int, or kFailed with the exception set. */
static int read_u64(PyObject* value, uint64_t* out) {
  if (!value) return kFailed;
  *out = PyLong_AsUnsignedLongLong(value);
  Py_DECREF(value);
  return *out == (uint64_t)-1 && PyErr_Occurred() ? kFailed : kLaunched;
}

/* obj.name is True: 1, 0, or kFailed */
static int is_true(PyObject* obj, PyObject* name) {
  PyObject* value = PyObject_GetAttr(obj, name);
  if (!value) return kFailed;
  Py_DECREF(value);
  return value == Py_True;
}

/* A shape tuple into v; kNotTaken past kMaxDims or for a negative extent. */
static int read_shape(PyObject* shape, tensor_view* v) {
  Py_ssize_t rank = PyTuple_Size(shape);
  if (rank < 0) return kFailed;
  if (rank > kMaxDims) return kNotTaken;
  for (Py_ssize_t i = 0; i < rank; ++i) {
    long long e = PyLong_AsLongLong(PyTuple_GetItem(shape, i));
    if (e == -1 && PyErr_Occurred()) return kFailed;
    if (e < 0) return kNotTaken;
    v->shape[i] = e;
  }
  v->rank = (int)rank;
  return kLaunched;
}

/* Through the tensor's Python attributes. A CUDA tensor's device is `device` where that is one
 * (the first tensor's: the C ABI checks each address's device), else read. `count`: read its
 * element count (numel(), or from the shape where that is read); `shape`: read its shape. */
static int read_attributes(PyObject* t, tensor_view* v, int32_t device, int count, int shape) {
  int cuda = is_true(t, s_is_cuda);
  int cpu = cuda == 0 ? is_true(t, s_is_cpu) : 0;
  if (cuda == kFailed || cpu == kFailed) return kFailed;
  if (!cuda && !cpu) return kNotTaken; /* another device: the Python path names it */
  PyObject* dtype = PyObject_GetAttr(t, s_dtype);
  if (!dtype) return kFailed;
  PyObject* code = PyDict_GetItemWithError(dtype_codes, dtype); /* borrowed */
  Py_DECREF(dtype);
  if (!code) return PyErr_Occurred() ? kFailed : kNotTaken;
  v->record.dtype = (int32_t)PyLong_AsLong(code);
  PyObject* contiguous = call_method(t, s_is_contiguous);
  if (!contiguous) return kFailed;
  Py_DECREF(contiguous);
  if (contiguous != Py_True) return kNotTaken;
  v->record.device = cuda ? device : -1;
  if (cuda && device < 0) {
    PyObject* ordinal = call_method(t, s_get_device);
    if (!ordinal) return kFailed;
    v->record.device = (int32_t)PyLong_AsLong(ordinal);
    Py_DECREF(ordinal);
  }
  if (read_u64(call_method(t, s_data_ptr), &v->record.address) != kLaunched) return kFailed;
  if (shape) {
    PyObject* dims = PyObject_GetAttr(t, s_shape);
    if (!dims) return kFailed;
    int status = read_shape(dims, v);
    Py_DECREF(dims);
    if (status != kLaunched) return status;
    return count ? shape_elements(v, &v->record.elements) : kLaunched;
  }
  if (count && read_u64(call_method(t, s_numel), &v->record.elements) != kLaunched) return kFailed;
  return kLaunched;
}

/* Whether t is read through the exchange API: of one of its types exactly. */
static int exchange_reads(PyObject* t) {
  if (!exchange) return 0;
  for (Py_ssize_t i = 0, types = PyTuple_Size(exchange_types); i < types; ++i)
    if (Py_TYPE(t) == (PyTypeObject*)PyTuple_GetItem(exchange_types, i)) return 1;
  return 0;
}

/* A contiguous CUDA or CPU torch tensor of a dtype mtile has; anything else is kNotTaken. */
static int read_tensor(PyObject* t, tensor_view* v, int32_t device, int count, int shape) {
  v->rank = -1;
  if (exchange_reads(t)) return read_exchanged(t, v);
  if (Py_TYPE(t) != (PyTypeObject*)tensor_type && !PyObject_IsInstance(t, tensor_type)) return kNotTaken;
  return read_attributes(t, v, device, count, shape);
}

/* The dims given as a tuple of ints, each a u32; kNotTaken where one is not. */
static int read_dims(PyObject* given, uint32_t* dims, size_t* num_dims) {
  Py_ssize_t count = PyTuple_Size(given);
  if (count < 0 || count > kMaxDims) return kNotTaken;
  for (Py_ssize_t i = 0; i < count; ++i) {
    unsigned long long v = PyLong_AsUnsignedLongLong(PyTuple_GetItem(given, i));
    if ((v == (unsigned long long)-1 && PyErr_Occurred()) || v > UINT32_MAX) {
      PyErr_Clear();
      return kNotTaken;
    }
    dims[i] = (uint32_t)v;
  }
  *num_dims = (size_t)count;
  return kLaunched;
}

/* (rows, n) of the first tensor: n its last extent, rows its elements / n (n = 0: the Python
 * path says what it makes of it). */
static int row_dims(const tensor_view* first, uint32_t* dims, size_t* num_dims) {
  if (first->rank < 1) return kNotTaken;
  uint64_t n = (uint64_t)first->shape[first->rank - 1], elements = first->record.elements;
  if (n == 0 || n > UINT32_MAX || elements / n > UINT32_MAX) return kNotTaken;
  dims[0] = (uint32_t)(elements / n);
  dims[1] = (uint32_t)n;
  *num_dims = 2;
  return kLaunched;
}

/* Tensor i of a norm-like call checked against the first: of its shape (`like`), or (n,). */
static int matches_first(const tensor_view* v, const tensor_view* first, int like) {
  if (first->rank < 1) return 0;
  if (!like) return v->rank == 1 && v->shape[0] == first->shape[first->rank - 1];
  if (v->rank != first->rank) return 0;
  for (int d = 0; d < v->rank; ++d)
    if (v->shape[d] != first->shape[d]) return 0;
  return 1;
}

static int launch_taken(PyObject* const* args) {
  const mtile_kernel* kernel = (const mtile_kernel*)PyLong_AsVoidPtr(args[0]);
  int32_t dtype = (int32_t)PyLong_AsLong(args[1]);
  PyObject *tensors = args[2], *given_dims = args[3], *given_scalars = args[4], *given_stream = args[5];
  unsigned long like = PyLong_AsUnsignedLong(args[6]), row = PyLong_AsUnsignedLong(args[7]);
  if (PyErr_Occurred()) return kFailed;
  if (!PyTuple_Check(tensors) || (given_dims != Py_None && !PyTuple_Check(given_dims)) || !PyTuple_Check(given_scalars))
    return kNotTaken;
  Py_ssize_t count = PyTuple_Size(tensors), num_scalars = PyTuple_Size(given_scalars);
  if (count < 1 || count > kMaxTensors || num_scalars > kMaxScalars) return kNotTaken;

  tensor_view first;
  mtile_tensor records[kMaxTensors];
  first.rank = -1;
  int status = kLaunched;
  for (Py_ssize_t i = 0; i < count && status == kLaunched; ++i) {
    PyObject* t = PyTuple_GetItem(tensors, i);
    int masked = i > 0 && ((like | row) >> i & 1);
    if (PyTuple_Check(t)) {
      status = read_record(t, &records[i]);
    } else if (PyDict_Check(t)) { /* a record per device: the one of the first tensor's */
      PyObject* device = i > 0 ? PyLong_FromLong(records[0].device) : NULL;
      PyObject* record = device ? PyDict_GetItemWithError(t, device) : NULL;
      Py_XDECREF(device);
      status = record ? read_record(record, &records[i]) : PyErr_Occurred() ? kFailed : kNotTaken;
    } else if (i == 0) {
      int need_shape = given_dims == Py_None || like || row;
      status = read_tensor(t, &first, -1, 1, need_shape);
      if (status == kLaunched) records[0] = first.record;
    } else if (!masked) {
      tensor_view v;
      status = read_tensor(t, &v, records[0].device, 1, 0);
      if (status == kLaunched) records[i] = v.record;
    } else if (first.rank < 1) { /* no first tensor's shape to compare with */
      status = kNotTaken;
    } else { /* x's shape, or (n,): the element count follows */
      tensor_view v;
      int as_first = like >> i & 1;
      status = read_tensor(t, &v, records[0].device, 0, 1);
      if (status == kLaunched && !matches_first(&v, &first, as_first)) status = kNotTaken;
      if (status == kLaunched) {
        v.record.elements = as_first ? first.record.elements : (uint64_t)first.shape[first.rank - 1];
        records[i] = v.record;
      }
    }
  }
  uint32_t dims[kMaxDims];
  size_t num_dims = 0;
  if (status == kLaunched)
    status = given_dims == Py_None ? row_dims(&first, dims, &num_dims) : read_dims(given_dims, dims, &num_dims);
  if (status != kLaunched) return status;
  if (dtype < 0) dtype = records[0].dtype;

  double scalars[kMaxScalars];
  for (Py_ssize_t i = 0; i < num_scalars; ++i) {
    scalars[i] = PyFloat_AsDouble(PyTuple_GetItem(given_scalars, i));
    if (scalars[i] == -1.0 && PyErr_Occurred()) return kFailed;
  }
  uint64_t stream = 0;
  if (given_stream == Py_None && records[0].device >= 0) {
    if (exchange) {
      void* current = NULL;
      if (exchange->current_work_stream(kDLCUDA, records[0].device, &current) != 0) return kFailed;
      stream = (uint64_t)(uintptr_t)current;
    } else {
      PyObject* device = PyLong_FromLong(records[0].device);
      PyObject* handle = device ? PyObject_CallFunctionObjArgs(current_stream, device, NULL) : NULL;
      Py_XDECREF(device);
      if (read_u64(handle, &stream) != kLaunched) return kFailed;
    }
  } else if (given_stream != Py_None) {
    Py_INCREF(given_stream);
    if (read_u64(given_stream, &stream) != kLaunched) return kFailed;
  }

  int rc;
  Py_BEGIN_ALLOW_THREADS; /* the first launch of a shape compiles it */
  rc = launch_tensors(kernel, records, (size_t)count, dims, num_dims, scalars, (size_t)num_scalars, dtype, stream);
  Py_END_ALLOW_THREADS;
  if (rc != MTILE_OK) {
    PyObject* code = PyLong_FromLong(rc);
    PyObject* kind = code ? PyDict_GetItemWithError(errors, code) : NULL;
    Py_XDECREF(code);
    if (!PyErr_Occurred()) PyErr_SetString(kind ? kind : PyExc_RuntimeError, last_error());
    return kFailed;
  }
  return kLaunched;
}

/* launch(kernel, dtype, tensors, dims, scalars, stream, like, row) -> bool
 *   kernel: the mtile_kernel's address; dtype: the variant (mtile_dtype; 0: the one the tensors
 *     match, -1: the first tensor's dtype)
 *   tensors: a tuple of torch tensors, records (address, elements, mtile_dtype, device) or
 *     {device: record} (the record of the first tensor's device)
 *   dims: a tuple of u32, or None for (rows, n) of the first tensor's shape
 *   scalars: a tuple of floats; stream: a CUstream, or None for torch's current one (0 on the CPU)
 *   like / row: bit i set: tensor i must have the first's shape / be one row of it, (n,). */
static PyObject* launch(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 8) {
    PyErr_Format(PyExc_TypeError, "mtile._launcher.launch takes 8 arguments, %zd given", nargs);
    return NULL;
  }
  if (!launch_tensors) {
    PyErr_SetString(PyExc_RuntimeError, "mtile._launcher: bind() was not called");
    return NULL;
  }
  int status = launch_taken(args);
  if (status == kFailed) return NULL;
  return PyBool_FromLong(status == kLaunched);
}

/* The exchange table of `capsule` (None: none), where it is one this file knows: DLPack 1.x from
 * 1.3 on, with the functions used here. Anything else: NULL, and tensors are read by attribute. */
static const dlpack_exchange_api* exchange_table(PyObject* capsule) {
  if (capsule == Py_None || !PyCapsule_IsValid(capsule, "dlpack_exchange_api")) return NULL;
  const dlpack_exchange_api* api = (const dlpack_exchange_api*)PyCapsule_GetPointer(capsule, "dlpack_exchange_api");
  if (!api || api->version.major != 1 || api->version.minor < 3) return NULL;
  if (!api->dltensor_from_py_object_no_sync || !api->current_work_stream) return NULL;
  return api;
}

/* bind(launch_tensors address, last_error address, torch.Tensor, dtype codes, stream fn, errors,
 *      exchange capsule or None, the types it reads) -> whether the exchange API is used */
static PyObject* bind(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 8) {
    PyErr_Format(PyExc_TypeError, "mtile._launcher.bind takes 8 arguments, %zd given", nargs);
    return NULL;
  }
  void* launch_address = PyLong_AsVoidPtr(args[0]);
  void* error_address = PyLong_AsVoidPtr(args[1]);
  if (PyErr_Occurred()) return NULL;
  if (!launch_address || !error_address || !PyDict_Check(args[3]) || !PyDict_Check(args[5]) ||
      !PyTuple_Check(args[7])) {
    PyErr_SetString(PyExc_TypeError,
                    "mtile._launcher.bind: two function addresses, a type, a dict, a callable, a dict, a capsule "
                    "or None, a tuple of types");
    return NULL;
  }
  PyObject** slots[] = {&tensor_type, &dtype_codes, &current_stream, &errors, &exchange_capsule, &exchange_types};
  for (int i = 0; i < 6; ++i) {
    PyObject* old = *slots[i];
    Py_INCREF(args[i + 2]);
    *slots[i] = args[i + 2];
    Py_XDECREF(old);
  }
  exchange = exchange_table(exchange_capsule);
  launch_tensors = (launch_tensors_fn)launch_address;
  last_error = (last_error_fn)error_address;
  return PyBool_FromLong(exchange != NULL);
}

static PyMethodDef methods[] = {
    {"launch", (PyCFunction)(void (*)(void))launch, METH_FASTCALL,
     "launch(kernel, dtype, tensors, dims, scalars, stream, like, row) -> bool: launched, or not taken"},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(launch, last_error, Tensor, dtypes, stream, errors, exchange capsule or None, its types) -> exchange used"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_launcher", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__launcher(void) {
  PyObject** names[] = {&s_is_cuda,    &s_is_cpu,        &s_dtype,    &s_shape,
                        &s_get_device, &s_is_contiguous, &s_data_ptr, &s_numel};
  const char* spelled[] = {"is_cuda", "is_cpu", "dtype", "shape", "get_device", "is_contiguous", "data_ptr", "numel"};
  for (int i = 0; i < 8; ++i)
    if (!*names[i] && !(*names[i] = PyUnicode_InternFromString(spelled[i]))) return NULL;
  return PyModule_Create(&module);
}
