/* mtile._launcher: the Python package's launch of a kernel on torch tensors, in C.
 *
 * The same work as _launch.launch_torch (read each tensor's address, element count, dtype and
 * device; torch's current stream; mtile_launch_tensors), without the interpreter between the
 * attribute reads and without ctypes. It takes only the common case, contiguous CUDA or CPU torch
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

static launch_tensors_fn launch_tensors;
static last_error_fn last_error;
/* Set by bind(): torch.Tensor, {torch dtype: mtile_dtype}, f(device) -> torch's current raw
 * stream, {status: exception class}. */
static PyObject *tensor_type, *dtype_codes, *current_stream, *errors;
static PyObject *s_is_cuda, *s_is_cpu, *s_dtype, *s_shape, *s_get_device, *s_is_contiguous, *s_data_ptr, *s_numel;

enum { kMaxTensors = 16, kMaxDims = 8, kMaxScalars = 8 };
enum { kLaunched = 1, kNotTaken = 0, kFailed = -1 };

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

/* obj.name is True: 1, 0, or kFailed */
static int is_true(PyObject* obj, PyObject* name) {
  PyObject* value = PyObject_GetAttr(obj, name);
  if (!value) return kFailed;
  Py_DECREF(value);
  return value == Py_True;
}

/* A contiguous CUDA or CPU torch tensor of a dtype mtile has. A CUDA tensor's device is `device`
 * where that is one (the first tensor's: the C ABI checks each address's device), else read.
 * `count`: read its element count; `shape`: where not NULL, gets its shape. */
static int read_tensor(PyObject* t, mtile_tensor* r, int32_t device, int count, PyObject** shape) {
  if (Py_TYPE(t) != (PyTypeObject*)tensor_type && !PyObject_IsInstance(t, tensor_type)) return kNotTaken;
  int cuda = is_true(t, s_is_cuda);
  int cpu = cuda == 0 ? is_true(t, s_is_cpu) : 0;
  if (cuda == kFailed || cpu == kFailed) return kFailed;
  if (!cuda && !cpu) return kNotTaken; /* another device: the Python path names it */
  PyObject* dtype = PyObject_GetAttr(t, s_dtype);
  if (!dtype) return kFailed;
  PyObject* code = PyDict_GetItemWithError(dtype_codes, dtype); /* borrowed */
  Py_DECREF(dtype);
  if (!code) return PyErr_Occurred() ? kFailed : kNotTaken;
  r->dtype = (int32_t)PyLong_AsLong(code);
  PyObject* contiguous = call_method(t, s_is_contiguous);
  if (!contiguous) return kFailed;
  Py_DECREF(contiguous);
  if (contiguous != Py_True) return kNotTaken;
  r->device = cuda ? device : -1;
  if (cuda && device < 0) {
    PyObject* ordinal = call_method(t, s_get_device);
    if (!ordinal) return kFailed;
    r->device = (int32_t)PyLong_AsLong(ordinal);
    Py_DECREF(ordinal);
  }
  if (read_u64(call_method(t, s_data_ptr), &r->address) != kLaunched) return kFailed;
  if (count && read_u64(call_method(t, s_numel), &r->elements) != kLaunched) return kFailed;
  if (shape && !(*shape = PyObject_GetAttr(t, s_shape))) return kFailed;
  return kLaunched;
}

/* The product of a shape's extents; kNotTaken past 2^62. */
static int shape_elements(PyObject* shape, uint64_t* elements) {
  *elements = 1;
  for (Py_ssize_t i = 0, rank = PyTuple_Size(shape); i < rank; ++i) {
    unsigned long long e = PyLong_AsUnsignedLongLong(PyTuple_GetItem(shape, i));
    if (PyErr_Occurred()) return kFailed;
    if (e != 0 && *elements > (UINT64_C(1) << 62) / e) return kNotTaken;
    *elements *= e;
  }
  return kLaunched;
}

/* shape == (n,) */
static int is_row(PyObject* shape, PyObject* n) {
  if (PyTuple_Size(shape) != 1) return 0;
  return PyObject_RichCompareBool(PyTuple_GetItem(shape, 0), n, Py_EQ);
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
static int row_dims(PyObject* shape, uint64_t elements, uint32_t* dims, size_t* num_dims) {
  Py_ssize_t rank = PyTuple_Size(shape);
  if (rank < 1) return kNotTaken;
  unsigned long long n = PyLong_AsUnsignedLongLong(PyTuple_GetItem(shape, rank - 1));
  if (PyErr_Occurred()) return kFailed;
  if (n == 0 || n > UINT32_MAX || elements / n > UINT32_MAX) return kNotTaken;
  dims[0] = (uint32_t)(elements / n);
  dims[1] = (uint32_t)n;
  *num_dims = 2;
  return kLaunched;
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

  mtile_tensor records[kMaxTensors];
  PyObject* shape = NULL; /* the first tensor's, where dims or the masks need it */
  PyObject* n = NULL;     /* its last extent, borrowed from shape */
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
      status = read_tensor(t, &records[0], -1, !need_shape, need_shape ? &shape : NULL);
      if (status == kLaunched && shape) status = shape_elements(shape, &records[0].elements);
      if (status == kLaunched && shape && PyTuple_Size(shape) > 0) n = PyTuple_GetItem(shape, PyTuple_Size(shape) - 1);
    } else if (!masked) {
      status = read_tensor(t, &records[i], records[0].device, 1, NULL);
    } else if (!shape || !n) { /* no first tensor's shape to compare with */
      status = kNotTaken;
    } else { /* x's shape, or (n,): the element count follows */
      PyObject* own = NULL;
      status = read_tensor(t, &records[i], records[0].device, 0, &own);
      if (status == kLaunched) {
        int same = like >> i & 1 ? PyObject_RichCompareBool(own, shape, Py_EQ) : is_row(own, n);
        status = same < 0 ? kFailed : same ? kLaunched : kNotTaken;
        records[i].elements = like >> i & 1 ? records[0].elements : (uint64_t)PyLong_AsUnsignedLongLong(n);
      }
      Py_XDECREF(own);
    }
  }
  uint32_t dims[kMaxDims];
  size_t num_dims = 0;
  if (status == kLaunched)
    status = given_dims == Py_None ? (shape ? row_dims(shape, records[0].elements, dims, &num_dims) : kNotTaken)
                                   : read_dims(given_dims, dims, &num_dims);
  Py_XDECREF(shape);
  if (status != kLaunched) return status;
  if (dtype < 0) dtype = records[0].dtype;

  double scalars[kMaxScalars];
  for (Py_ssize_t i = 0; i < num_scalars; ++i) {
    scalars[i] = PyFloat_AsDouble(PyTuple_GetItem(given_scalars, i));
    if (scalars[i] == -1.0 && PyErr_Occurred()) return kFailed;
  }
  uint64_t stream = 0;
  if (given_stream == Py_None && records[0].device >= 0) {
    PyObject* device = PyLong_FromLong(records[0].device);
    PyObject* handle = device ? PyObject_CallFunctionObjArgs(current_stream, device, NULL) : NULL;
    Py_XDECREF(device);
    if (read_u64(handle, &stream) != kLaunched) return kFailed;
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

/* bind(launch_tensors address, last_error address, torch.Tensor, dtype codes, stream fn, errors) */
static PyObject* bind(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 6) {
    PyErr_Format(PyExc_TypeError, "mtile._launcher.bind takes 6 arguments, %zd given", nargs);
    return NULL;
  }
  void* launch_address = PyLong_AsVoidPtr(args[0]);
  void* error_address = PyLong_AsVoidPtr(args[1]);
  if (PyErr_Occurred()) return NULL;
  if (!launch_address || !error_address || !PyDict_Check(args[3]) || !PyDict_Check(args[5])) {
    PyErr_SetString(PyExc_TypeError,
                    "mtile._launcher.bind: two function addresses, a type, a dict, a callable, a dict");
    return NULL;
  }
  PyObject** slots[] = {&tensor_type, &dtype_codes, &current_stream, &errors};
  for (int i = 0; i < 4; ++i) {
    PyObject* old = *slots[i];
    Py_INCREF(args[i + 2]);
    *slots[i] = args[i + 2];
    Py_XDECREF(old);
  }
  launch_tensors = (launch_tensors_fn)launch_address;
  last_error = (last_error_fn)error_address;
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"launch", (PyCFunction)(void (*)(void))launch, METH_FASTCALL,
     "launch(kernel, dtype, tensors, dims, scalars, stream, like, row) -> bool: launched, or not taken"},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(launch, last_error, Tensor, dtypes, stream, errors)"},
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
