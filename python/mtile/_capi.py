"""ctypes bindings of libmtile_c (include/mtile/mtile.h) and the exceptions its statuses become.

The library is found next to this file (where `pip install .` puts it) or at $MTILE_LIBRARY (an
in-tree build: build/libmtile_c.so). Function objects are made once, with their argument types,
so a call costs one ctypes dispatch.
"""
import ctypes
import importlib.util
import os


class Error(Exception):
    """An error mtile reported; the message names the kernel, the parameter, the rule and the values."""


class UserError(Error, ValueError):
    """A bad request: unknown kernel, wrong device, dtype, shape or layout, a violated contract."""


class InternalError(Error, RuntimeError):
    """mtile broke its own rules (generated code did not compile, a pass broke the IR): a bug to report."""


class DeviceError(Error, RuntimeError):
    """The device or the host failed or ran out of memory."""


ERRORS = {2: UserError, 3: InternalError, 4: DeviceError}

# mtile_dtype codes and names.
AUTO, F32, F16, BF16, U32, I32, U64, I64, U8, I8, U16, I16, F8E4M3, F8E5M2 = range(14)
DTYPE_NAMES = {F32: "f32", F16: "f16", BF16: "bf16", U32: "u32", I32: "i32", U64: "u64", I64: "i64", U8: "u8",
               I8: "i8", U16: "u16", I16: "i16", F8E4M3: "f8e4m3", F8E5M2: "f8e5m2"}
DTYPE_CODES = {name: code for code, name in DTYPE_NAMES.items()}
# mtile_param kinds and roles.
PARAM_TENSOR, PARAM_CONSTEXPR, PARAM_SCALAR = 0, 1, 2
ROLES = {0: "in", 1: "out", 2: "inout"}
# mtile_text.
TEXT_SUMMARY, TEXT_FAMILY, TEXT_DISPATCH, TEXT_PRECONDITIONS, TEXT_CONFIG, TEXT_SIZES = range(6)


def library_path():
    """The libmtile_c.so this package uses."""
    return os.environ.get("MTILE_LIBRARY") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "libmtile_c.so")


def _load():
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(
            f"mtile: {path} does not exist; `pip install .` at the repository root builds it, or set "
            "MTILE_LIBRARY to an in-tree build's libmtile_c.so"
        )
    return ctypes.CDLL(path)


lib = _load()


def _load_launcher():
    """mtile._launcher (python/ext/launcher.c), found beside the library."""
    path = os.path.join(os.path.dirname(library_path()), "_launcher.abi3.so")
    if not os.path.exists(path):
        raise ImportError(
            f"mtile: {path} does not exist; it is built with libmtile_c.so where Python's headers are "
            "(Debian: python3-dev), by `pip install .` or CMake's target mtile_python_launcher"
        )
    spec = importlib.util.spec_from_file_location("mtile._launcher", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = _load_launcher()


class Param(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32), ("role", ctypes.c_int32), ("dtype", ctypes.c_int32)]


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = argtypes
    return f


_p, _i32, _u32, _u64, _size = ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
_int, _str = ctypes.c_int, ctypes.c_char_p
abi_version = _fn("mtile_abi_version", _i32)
version = _fn("mtile_version", _str)
last_error = _fn("mtile_last_error", _str)
kernel_count = _fn("mtile_kernel_count", _int, ctypes.POINTER(_size))
kernel_at = _fn("mtile_kernel_at", _int, _size, ctypes.POINTER(_p))
kernel_find = _fn("mtile_kernel_find", _int, _str, ctypes.POINTER(_p))
kernel_name = _fn("mtile_kernel_name", _str, _p)
kernel_text = _fn("mtile_kernel_text", _str, _p, _i32)
kernel_dim_count = _fn("mtile_kernel_dim_count", _size, _p)
kernel_dim = _fn("mtile_kernel_dim", _str, _p, _size)
kernel_dtype_count = _fn("mtile_kernel_dtype_count", _size, _p)
kernel_dtype = _fn("mtile_kernel_dtype", _i32, _p, _size)
kernel_param_count = _fn("mtile_kernel_param_count", _size, _p)
kernel_param = _fn("mtile_kernel_param", _int, _p, _size, _i32, ctypes.POINTER(Param))
# (kernel, tensors, num_tensors, dims, num_dims, scalars, num_scalars, dtype, stream): tensors, dims
# and scalars are addresses or bytes objects (packed mtile_tensor records / uint32 / double values).
launch_dlpack = _fn("mtile_launch", _int, _p, _p, _size, _p, _size, _p, _size, _i32, _u64)
launch_tensors = _fn("mtile_launch_tensors", _int, _p, _p, _size, _p, _size, _p, _size, _i32, _u64)
# (call): an mtile_call followed by its records, dims and scalars, packed by Kernel.pack_call; one
# argument, as ctypes spends about 0.15 us converting each.
launch_packed = _fn("mtile_launch_packed", _int, _str)
load_library = _fn("mtile_load_library", _int, _str, ctypes.POINTER(_size))


def fail(status):
    """Raises the exception of a failed call's status, with this thread's message."""
    raise ERRORS.get(status, Error)(last_error().decode(errors="replace"))


def check(status):
    if status:
        fail(status)


if abi_version() != 3:
    raise ImportError(f"mtile: {library_path()} has C ABI version {abi_version()}; this package speaks version 3")
