"""The standard library as Python functions named after its kernels, and launch() for any kernel.

Each function takes torch tensors (CPU or CUDA) or numpy arrays, derives the kernel's dims from
their shapes (rows = the product of the leading dims, n = the last), allocates the output unless
`out=` is given, provides the f32 `eps_buf` tensor the norm kernels read (cached per device and
eps, so that nothing is allocated or copied while a CUDA graph is captured), and returns the output.
While torch.compile traces, each calls its torch custom op (torch.ops.mtile.*) instead, so that
the graph holds it.
"""
import math

from . import _capi
from ._capi import UserError
from ._launch import (
    NUMPY_DTYPES,
    TORCH_DTYPES,
    NumpyArray,
    TorchTensor,
    launch_dlpack,
    launch_numpy,
    fast,
    launch_torch,
    numpy,
    numpy_dtype,
    torch,
    torch_dtype,
)
from ._registry import kernel

if torch is not None and hasattr(torch.library, "custom_op"):  # torch >= 2.4: the ops exist (_torch_ops)
    _compiling = torch.compiler.is_compiling
else:  # no ops to call: torch.compile, if any, traces through the functions (a graph break at ctypes)

    def _compiling():
        return False


def _launch(fn, k, tensors, dims, x, scalars=()):
    """Launches `k` on tensors of x's kind, in x's variant (a mismatch is the C ABI's clear error),
    with `scalars` (floats, in the order of k.scalars)."""
    if isinstance(x, TorchTensor):
        code = TORCH_DTYPES.get(x.dtype) or torch_dtype(k, k.tensors[0].name, x)
        launch_torch(k, tensors, dims, code, None, scalars)
    elif isinstance(x, NumpyArray):
        launch_numpy(k, tensors, dims, numpy_dtype(k, k.tensors[0].name, x), scalars)
    else:
        raise UserError(
            f"mtile.{fn}: {k.tensors[0].name} is a {type(x).__name__}; mtile.{fn} takes torch tensors and numpy "
            f"arrays (mtile.launch({k.name!r}, ...) takes any DLPack array)"
        )


def _empty_like(x):
    return torch.empty_like(x) if isinstance(x, TorchTensor) else numpy.empty_like(x)


def _shape(fn, name, t):
    shape = getattr(t, "shape", None)
    if shape is None:
        raise UserError(f"mtile.{fn}: {name} is a {type(t).__name__}; mtile.{fn} takes torch tensors and numpy arrays")
    return shape


def _rows(fn, name, x):
    """(rows, n) of x: n its last dim, rows the product of the others."""
    shape = _shape(fn, name, x)
    if len(shape) == 0:
        raise UserError(f"mtile.{fn}: {name} is a scalar; it needs at least one dim (rows x n)")
    return (math.prod(shape[:-1]), shape[-1])


def _same_shape(fn, name, t, shape, like="x"):
    if _shape(fn, name, t) != shape:
        raise UserError(f"mtile.{fn}: {name} has shape {tuple(t.shape)}; it must be {like}'s, {tuple(shape)}")


def _row_weight(fn, w, n):
    if _shape(fn, "w", w) != (n,):
        raise UserError(f"mtile.{fn}: w has shape {tuple(w.shape)}; it must be ({n},), x's last dim")


# eps -> {device: the record of a one-element f32 tensor holding it}: -1 the CPU, N cuda:N, "numpy"
# for numpy arrays. mtile._launcher reads it by the first tensor's device; the tensors stay alive
# in _eps_tensors.
_eps_records = {}
_eps_tensors = []


def _eps_buf(fn, x, eps):
    """The record of a one-element f32 tensor holding eps on x's device, made once per (device, eps)."""
    eps = float(eps)
    is_torch = isinstance(x, TorchTensor)
    device = (x.get_device() if x.is_cuda else -1) if is_torch else "numpy"
    records = _eps_records.setdefault(eps, {})
    record = records.get(device)
    if record is None:
        if is_torch:
            if device != -1 and torch.cuda.is_current_stream_capturing():
                raise UserError(
                    f"mtile.{fn}: eps={eps} is first used on cuda:{device} inside a CUDA graph capture; call "
                    f"mtile.{fn} once before capturing (mtile compiles the kernel and makes its eps buffer then)"
                )
            buf = torch.full((1,), eps, dtype=torch.float32, device=x.device)
            record = (buf.data_ptr(), 1, _capi.F32, device)
        else:
            buf = numpy.full(1, eps, dtype=numpy.float32)
            buf.flags.writeable = False
            record = (buf.ctypes.data, 1, _capi.F32, -1)
        _eps_tensors.append(buf)
        records[device] = record
    return record


def _compiled(op, out, *args):
    result = op(*args)
    if out is None:
        return result
    out.copy_(result)
    return out


# ---- the norm kernels: out = (residual +) w * x * rsqrt(mean(x^2) + eps), row by row ----------


def _fast_norm(k, x, residual, w, out, eps):
    """Launches row norm `k` through mtile._launcher where it takes the call (contiguous torch
    tensors on a CUDA device or the CPU, residual and out of x's shape, w of (n,), eps's buffer made
    on x's device before) and says whether it did; else the general path checks the tensors and
    names what is wrong."""
    records = _eps_records.get(eps)
    if records is None:
        return False
    # Bit i of `like` / `row`: tensor i has x's shape / is (n,). The variant is x's dtype (-1);
    # dims (rows, n) come from x's shape (None).
    if residual is None:
        if out is None:
            return fast(k.handle, -1, (x, w, records), None, (), None, 0, 0b10)
        return fast(k.handle, -1, (x, w, out, records), None, (), None, 0b100, 0b10)
    if out is None:
        return fast(k.handle, -1, (x, residual, w, records), None, (), None, 0b10, 0b100)
    return fast(k.handle, -1, (x, residual, w, out, records), None, (), None, 0b1010, 0b100)


def _norm(fn, x, residual, w, eps, out):
    k = kernel(fn)
    eps = float(eps)
    if isinstance(x, TorchTensor):
        if out is None:
            out = torch.empty_like(x)
        if _fast_norm(k, x, residual, w, out, eps):
            return out
    dims = _rows(fn, "x", x)
    shape = x.shape
    if residual is not None:
        _same_shape(fn, "residual", residual, shape)
    _row_weight(fn, w, dims[1])
    eps_buf = _eps_buf(fn, x, eps)  # first: it refuses to be made inside a CUDA graph capture
    if out is None:
        out = _empty_like(x)
    else:
        _same_shape(fn, "out", out, shape)
    tensors = (x, w, out, eps_buf) if residual is None else (x, residual, w, out, eps_buf)
    _launch(fn, k, tensors, dims, x)
    return out


def rms_norm_residual(x, residual, w, eps=1e-6, *, out=None):
    """out = residual + w * x * rsqrt(mean(x^2) + eps) over the last dim, rows of any length."""
    if _compiling():
        return _compiled(torch.ops.mtile.rms_norm_residual, out, x, residual, w, float(eps))
    return _norm("rms_norm_residual", x, residual, w, eps, out)


def ffai_rms_norm_residual(x, residual, w, eps=1e-6, *, out=None):
    """rms_norm_residual's math by the seed kernel: 4 elements a thread, n % 128 == 0 and n <= 4096."""
    if _compiling():
        return _compiled(torch.ops.mtile.ffai_rms_norm_residual, out, x, residual, w, float(eps))
    return _norm("ffai_rms_norm_residual", x, residual, w, eps, out)


def mt_rms_norm(x, w, eps=1e-6, *, out=None):
    """out = w * x * rsqrt(mean(x^2) + eps), 4 elements a thread: n % 128 == 0 and n <= 4096."""
    if _compiling():
        return _compiled(torch.ops.mtile.mt_rms_norm, out, x, w, float(eps))
    return _norm("mt_rms_norm", x, None, w, eps, out)


def mt_rms_norm_small(x, w, eps=1e-6, *, out=None):
    """RMSNorm of rows of at most 64 (attention heads), one simdgroup a row: n even, 2 <= n <= 64."""
    if _compiling():
        return _compiled(torch.ops.mtile.mt_rms_norm_small, out, x, w, float(eps))
    return _norm("mt_rms_norm_small", x, None, w, eps, out)


def mt_rms_norm_wide(x, w, eps=1e-6, *, out=None):
    """RMSNorm of rows of any length."""
    if _compiling():
        return _compiled(torch.ops.mtile.mt_rms_norm_wide, out, x, w, float(eps))
    return _norm("mt_rms_norm_wide", x, None, w, eps, out)


def _add_rms_norm(x, residual, w, eps):
    fn = "add_rms_norm_"
    k = kernel("add_rms_norm")
    eps = float(eps)
    if isinstance(x, TorchTensor) and _fast_norm(k, x, residual, w, None, eps):
        return
    dims = _rows(fn, "x", x)
    _same_shape(fn, "residual", residual, x.shape)
    _row_weight(fn, w, dims[1])
    _launch(fn, k, (x, residual, w, _eps_buf(fn, x, eps)), dims, x)


def add_rms_norm_(x, residual, w, eps=1e-6):
    """The pre-norm residual step in place (kernel add_rms_norm): residual += x; x = rmsnorm(residual) * w.

    The sum is rounded to the dtype as it is stored in residual, and that is what is normalised."""
    if _compiling():
        torch.ops.mtile.add_rms_norm(x, residual, w, float(eps))
        return None
    _add_rms_norm(x, residual, w, eps)
    return None


def _mt_rms_inv_scalar(partial_ssq, n, eps, out):
    fn = "mt_rms_inv_scalar"
    k = kernel(fn)
    rows, threads = _rows(fn, "partial_ssq", partial_ssq)
    shape = partial_ssq.shape[:-1]
    if out is None:
        if isinstance(partial_ssq, TorchTensor):
            out = partial_ssq.new_empty(shape)
        else:
            out = numpy.empty(shape, dtype=partial_ssq.dtype)
    elif _shape(fn, "out", out) != shape:
        raise UserError(f"mtile.{fn}: out has shape {tuple(out.shape)}; it must be {tuple(shape)}, partial_ssq's rows")
    _launch(fn, k, (partial_ssq, _eps_buf(fn, partial_ssq, eps), out), (rows, threads, n), partial_ssq)
    return out


def mt_rms_inv_scalar(partial_ssq, n, eps=1e-6, *, out=None):
    """out[r] = 1 / sqrt(sum(partial_ssq[r, :]) / n + eps): the inverse RMS of rows of n elements from
    their per-thread partial sums of squares (f32, rows x threads)."""
    if _compiling():
        return _compiled(torch.ops.mtile.mt_rms_inv_scalar, out, partial_ssq, int(n), float(eps))
    return _mt_rms_inv_scalar(partial_ssq, n, eps, out)


def _softmax(x, out):
    fn = "softmax"
    dims = _rows(fn, "x", x)
    if out is None:
        out = _empty_like(x)
    else:
        _same_shape(fn, "out", out, x.shape)
    _launch(fn, kernel(fn), (x, out), dims, x)
    return out


def softmax(x, *, out=None):
    """Softmax over the last dim."""
    if _compiling():
        return _compiled(torch.ops.mtile.softmax, out, x)
    return _softmax(x, out)


def _vector_add(a, b, out):
    fn = "vector_add"
    _same_shape(fn, "b", b, _shape(fn, "a", a), like="a")
    if out is None:
        out = _empty_like(a)
    else:
        _same_shape(fn, "out", out, a.shape, like="a")
    _launch(fn, kernel(fn), (a, b, out), (math.prod(a.shape),), a)
    return out


def vector_add(a, b, *, out=None):
    """out = a + b, element by element."""
    if _compiling():
        return _compiled(torch.ops.mtile.vector_add, out, a, b)
    return _vector_add(a, b, out)


# ---- any registered kernel --------------------------------------------------------------------


def _dtype_code(dtype):
    if dtype is None:
        return _capi.AUTO
    if isinstance(dtype, str) and dtype in _capi.DTYPE_CODES:
        return _capi.DTYPE_CODES[dtype]
    if torch is not None and dtype in TORCH_DTYPES:
        return TORCH_DTYPES[dtype]
    if numpy is not None:
        try:
            code = NUMPY_DTYPES.get(numpy.dtype(dtype).str)
            if code is not None:
                return code
        except TypeError:
            pass
    raise UserError(f"dtype {dtype!r} is not one of mtile's: f32, f16, bf16, u32, i32 (or a torch/numpy dtype)")


def _launch_dims(k, tensors, given):
    unknown = [d for d in given if d not in k.dims]
    if unknown:
        raise UserError(f"kernel {k.name} has no dim {unknown[0]!r} (its dims: {', '.join(k.dims)})")
    derived = {}
    shape = getattr(tensors[0], "shape", None) if tensors else None
    if shape is not None and len(shape) > 0:
        if k.dims == ("rows", "n"):
            derived = {"rows": math.prod(shape[:-1]), "n": shape[-1]}
        elif k.dims == ("n",):
            derived = {"n": math.prod(shape)}
    dims = []
    for d in k.dims:
        value = given[d] if d in given else derived.get(d)
        if value is None:
            raise UserError(
                f"kernel {k.name}: pass its dims as keywords, mtile.launch({k.name!r}, ..., "
                f"{', '.join(f'{d}=...' for d in k.dims)}); only (rows, n) and (n) are read off the first tensor"
            )
        value = int(value)
        if not 0 <= value < 2**32:
            raise UserError(f"kernel {k.name}: dim {d} = {value} is not a u32")
        dims.append(value)
    return tuple(dims)


def _stream_handle(stream):
    if stream is None or isinstance(stream, int):
        return stream
    for attr in ("cuda_stream", "ptr", "handle"):  # torch.cuda.Stream, cupy, others
        if hasattr(stream, attr):
            return int(getattr(stream, attr))
    raise UserError(f"stream {stream!r} is neither a CUstream handle (int) nor a stream object with one")


def launch(name, *tensors, dtype=None, stream=None, **dims):
    """Launches the registered kernel `name` on `tensors` (one per tensor parameter, in order, outputs
    included; see mtile.kernel(name).tensors) and returns nothing: outputs are written in place.

    Keywords give the dims (rows=..., n=...) and the values of scalar parameters (eps=1e-6; every
    one of mtile.kernel(name).scalars is needed); kernels with dims (rows, n) or (n) take the dims
    from the first tensor's shape when they are not given. dtype picks the variant (default: from the tensors).
    stream: a CUstream (int or stream object); default torch's current stream for CUDA torch
    tensors, else 0 (the legacy default stream). torch tensors and numpy arrays are read directly;
    anything else through DLPack.
    """
    k = kernel(name)
    if len(tensors) != len(k.tensors):
        raise UserError(
            f"kernel {name} takes {len(k.tensors)} tensors ({', '.join(p.name for p in k.tensors)}), {len(tensors)} given"
        )
    missing = [s for s in k.scalars if s not in dims]
    if missing:
        raise UserError(f"kernel {name}: pass its scalars as keywords ({', '.join(f'{s}=...' for s in missing)})")
    scalars = tuple(float(dims.pop(s)) for s in k.scalars)
    shape = _launch_dims(k, tensors, dims)
    code = _dtype_code(dtype)
    stream = _stream_handle(stream)
    if tensors and all(isinstance(t, TorchTensor) for t in tensors):
        launch_torch(k, tensors, shape, code, stream, scalars)
    elif tensors and all(isinstance(t, NumpyArray) for t in tensors) and not stream:
        launch_numpy(k, tensors, shape, code, scalars)
    else:
        launch_dlpack(k, tensors, shape, code, stream or 0, scalars)
