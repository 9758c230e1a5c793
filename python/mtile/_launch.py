"""Launching a kernel on torch tensors, numpy arrays or any DLPack array.

A tensor argument may also be a record (address, elements, mtile_dtype, device) that the caller
made and checked itself (the library functions' cached eps buffers).

torch tensors and numpy arrays are read directly (address, element count, dtype, device) into
mtile_tensor records: cheaper per call than a DLPack capsule each. CUDA tensors run on torch's
current stream of their device, so launches join torch's order and its CUDA graph captures; CPU
tensors and numpy arrays run on the CPU engine, at once. Any other array goes through its
__dlpack__ capsule (mtile_launch takes the DLTensor as it is).

Contiguous torch tensors (CUDA or CPU) are read and launched by the C extension mtile._launcher (`fast`,
bound here to the library's mtile_launch_tensors, and to torch's DLPack C exchange API where torch
has one): the Python path below runs where it declines, and names what is wrong.
"""
import ctypes
import struct

from . import _capi
from ._capi import UserError

try:
    import torch
except ImportError:
    torch = None
try:
    import numpy
except ImportError:
    numpy = None

TorchTensor = torch.Tensor if torch is not None else type(None)
NumpyArray = numpy.ndarray if numpy is not None else type(None)

TORCH_DTYPES = {}
if torch is not None:
    TORCH_DTYPES = {torch.float32: _capi.F32, torch.float16: _capi.F16, torch.bfloat16: _capi.BF16,
                    torch.int32: _capi.I32, torch.int64: _capi.I64, torch.uint8: _capi.U8, torch.int8: _capi.I8,
                    torch.int16: _capi.I16}
    for name, code in (("uint32", _capi.U32), ("uint64", _capi.U64), ("uint16", _capi.U16),
                       ("float8_e4m3fn", _capi.F8E4M3), ("float8_e5m2", _capi.F8E5M2)):
        if hasattr(torch, name):  # newer torch versions
            TORCH_DTYPES[getattr(torch, name)] = code
    _cuda_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None) or (
        lambda device: torch.cuda.current_stream(device).cuda_stream
    )
else:
    _cuda_stream = None


def bind_launcher(exchange=True):
    """Binds mtile._launcher to this library's mtile_launch_tensors, torch.Tensor and torch's streams,
    and, where torch has DLPack's C exchange API and `exchange` is true, to that: tensors are then
    read by one C call each. Returns whether the exchange API is used."""
    capsule = getattr(TorchTensor, "__dlpack_c_exchange_api__", None) if exchange else None
    return _capi.launcher.bind(
        ctypes.cast(_capi.lib.mtile_launch_tensors, ctypes.c_void_p).value,
        ctypes.cast(_capi.lib.mtile_last_error, ctypes.c_void_p).value,
        TorchTensor,
        TORCH_DTYPES,
        _cuda_stream or (lambda device: 0),
        _capi.ERRORS,
        capsule,
        (torch.Tensor, torch.nn.Parameter) if torch is not None else (),
    )


bind_launcher()
# fast(kernel, dtype, tensors, dims, scalars, stream, like, row) -> launched? (python/ext/launcher.c)
fast = _capi.launcher.launch
NUMPY_DTYPES = {"<f4": _capi.F32, "<f2": _capi.F16, "<u4": _capi.U32, "<i4": _capi.I32, "<u8": _capi.U64,
                "<i8": _capi.I64, "|u1": _capi.U8, "|i1": _capi.I8, "<u2": _capi.U16, "<i2": _capi.I16}


def _where(k):
    return f"kernel {k.name}"


def _pack_dims(k, dims):
    try:
        return k.pack_dims(*dims)
    except struct.error:
        shown = ", ".join(f"{d} = {v}" for d, v in zip(k.dims, dims))
        raise UserError(f"{_where(k)}: its dims ({shown}) must be u32 values") from None


def torch_dtype(k, name, t):
    code = TORCH_DTYPES.get(t.dtype)
    if code is None:
        raise UserError(f"{_where(k)}: tensor '{name}' is {t.dtype}; mtile takes float32, float16, bfloat16, int32, uint32")
    return code


def numpy_dtype(k, name, a):
    code = NUMPY_DTYPES.get(a.dtype.str)
    if code is None:
        raise UserError(
            f"{_where(k)}: array '{name}' is {a.dtype} ({a.dtype.str}); mtile takes float32, float16 and "
            "8- to 64-bit integers in native byte order (bfloat16 and fp8 through torch)"
        )
    return code


def _torch_device(k, name, t):
    if t.is_cuda:
        return t.get_device()
    if t.device.type == "cpu":
        return -1
    raise UserError(f"{_where(k)}: tensor '{name}' is on {t.device}; mtile takes CPU and CUDA tensors")


def _launch_packed(k, call, dims):
    """Packs the mtile_call `call` (header, records, then dims and scalars) and launches it."""
    try:
        block = k.pack_call(*call)
    except struct.error:
        _pack_dims(k, dims)  # names the dim that is not a u32
        raise
    status = _capi.launch_packed(block)
    if status:
        _capi.fail(status)


def launch_torch(k, tensors, dims, dtype, stream=None, scalars=()):
    """Launches `k` on torch tensors (one per tensor parameter) with `dims` (a tuple, the kernel's
    order), on `stream` (default: torch's current stream of their device)."""
    if fast(k.handle, dtype, tensors, dims, scalars, stream, 0, 0):
        return
    call = [k.handle, 0, dtype, *k.counts]  # the mtile_call; its stream is set below
    device = None
    for p, t in zip(k.tensors, tensors):
        if type(t) is tuple:  # a record made (and checked) before: mtile's own eps buffers
            call += t
            continue
        if type(t) is not TorchTensor and not isinstance(t, TorchTensor):
            raise UserError(f"{_where(k)}: '{p.name}' is a {type(t).__name__}; the other tensors are torch tensors")
        if not t.is_contiguous():
            raise UserError(
                f"{_where(k)}: tensor '{p.name}' is not contiguous (shape {tuple(t.shape)}, strides {t.stride()}); "
                "pass .contiguous()"
            )
        code = TORCH_DTYPES.get(t.dtype)
        if code is None:
            torch_dtype(k, p.name, t)
        device = t.get_device() if t.is_cuda else _torch_device(k, p.name, t)
        call += (t.data_ptr(), t.numel(), code, device)
    if stream is None:
        stream = _cuda_stream(device) if device is not None and device >= 0 else 0
    call[1] = stream
    call += dims
    call += scalars
    _launch_packed(k, call, dims)


def launch_numpy(k, tensors, dims, dtype, scalars=()):
    """Launches `k` on numpy arrays, on the CPU engine."""
    call = [k.handle, 0, dtype, *k.counts]
    for p, a in zip(k.tensors, tensors):
        if type(a) is tuple:  # a record made (and checked) before
            call += a
            continue
        if not isinstance(a, NumpyArray):
            raise UserError(f"{_where(k)}: '{p.name}' is a {type(a).__name__}; the other arrays are numpy arrays")
        if not a.flags.c_contiguous:
            raise UserError(
                f"{_where(k)}: array '{p.name}' is not C-contiguous (shape {a.shape}, strides {a.strides} in "
                "bytes); pass numpy.ascontiguousarray(...)"
            )
        if p.role != "in" and not a.flags.writeable:
            raise UserError(f"{_where(k)}: array '{p.name}' is read-only, and the kernel writes it ({p.role})")
        call += (a.ctypes.data, a.size, numpy_dtype(k, p.name, a), -1)
    call += dims
    call += scalars
    _launch_packed(k, call, dims)


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_valid.restype = ctypes.c_int
_capsule_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_KDL_CUDA = 2


def launch_dlpack(k, tensors, dims, dtype, stream, scalars=()):
    """Launches `k` on DLPack arrays: each one's capsule is read, not consumed (its producer frees it).

    CUDA arrays are asked to be ready on `stream` (DLPack's rule; 0 = the legacy default stream)."""
    capsules = []
    for p, a in zip(k.tensors, tensors):
        if not hasattr(a, "__dlpack__"):
            raise UserError(f"{_where(k)}: '{p.name}' is a {type(a).__name__}, not a tensor (no __dlpack__)")
        on_cuda = hasattr(a, "__dlpack_device__") and a.__dlpack_device__()[0] == _KDL_CUDA
        # DLPack spells the legacy default stream 1 (0 is ambiguous there).
        capsule = a.__dlpack__(stream=(stream or 1)) if on_cuda else a.__dlpack__()
        if not _capsule_valid(capsule, b"dltensor"):
            raise UserError(f"{_where(k)}: '{p.name}' gave no unused DLPack capsule named 'dltensor'")
        capsules.append(capsule)
    # A DLManagedTensor begins with its DLTensor: its address is the DLTensor's.
    pointers = (ctypes.c_void_p * max(1, len(capsules)))(*(_capsule_pointer(c, b"dltensor") for c in capsules))
    status = _capi.launch_dlpack(
        k.handle, pointers, len(capsules), _pack_dims(k, dims), len(dims), k.pack_scalars(*scalars), len(scalars),
        dtype, stream
    )
    del capsules  # after the launch: the producers may free the tensors' descriptions now
    if status:
        _capi.fail(status)


def current_stream(tensors):
    """torch's current stream of the first CUDA torch tensor's device, else 0."""
    for t in tensors:
        if isinstance(t, TorchTensor) and t.is_cuda:
            return _cuda_stream(t.get_device())
    return 0
