"""The registered kernels as Python objects: names, dims, variants, parameters and contract."""
import ctypes
import struct
from typing import NamedTuple

from . import _capi


class Param(NamedTuple):
    name: str
    kind: str  # "tensor", "constexpr" (a u32 known per launch, from the dims) or "scalar" (a value per launch)
    role: str  # "in", "out" or "inout"


class Kernel:
    """A registered kernel: what `mtile list` shows, and what a launch needs to pack its arguments."""

    def __init__(self, handle):
        c = _capi
        self.handle = handle
        self.name = c.kernel_name(handle).decode()
        self.summary, self.family, self.dispatch, self.preconditions, self.config, self.sizes = (
            (c.kernel_text(handle, what) or b"").decode() for what in range(6)
        )
        self.dims = tuple(c.kernel_dim(handle, i).decode() for i in range(c.kernel_dim_count(handle)))
        self._dtype_codes = tuple(c.kernel_dtype(handle, i) for i in range(c.kernel_dtype_count(handle)))
        self.dtypes = tuple(c.DTYPE_NAMES[d] for d in self._dtype_codes)
        params = []
        for i in range(c.kernel_param_count(handle)):
            p = self._param(i, self._dtype_codes[0])
            kind = {c.PARAM_TENSOR: "tensor", c.PARAM_CONSTEXPR: "constexpr"}.get(p.kind, "scalar")
            params.append(Param(p.name.decode(), kind, c.ROLES[p.role]))
        self.params = tuple(params)
        self.tensors = tuple(p for p in params if p.kind == "tensor")
        self.scalars = tuple(p.name for p in params if p.kind == "scalar")
        # mtile_tensor records (address, elements, dtype, device) and dims (uint32), packed per call.
        self.pack_tensors = struct.Struct("<" + "QQii" * len(self.tensors)).pack
        self.pack_dims = struct.Struct("<" + "I" * len(self.dims)).pack
        self.pack_scalars = struct.Struct("<" + "d" * len(self.scalars)).pack
        # mtile_launch_packed's block: pack_call(handle, stream, dtype, *counts, *records, *dims, *scalars).
        self.counts = (len(self.tensors), len(self.dims), len(self.scalars))
        self.pack_call = struct.Struct(
            "<QQiIII" + "QQii" * len(self.tensors) + "I" * len(self.dims) + "d" * len(self.scalars)
        ).pack

    def _param(self, index, dtype):
        p = _capi.Param()
        _capi.check(_capi.kernel_param(self.handle, index, dtype, ctypes.byref(p)))
        return p

    def param_dtypes(self, dtype):
        """{tensor name: element type} in variant `dtype` ("bf16"): eps_buf stays "f32"."""
        code = _capi.DTYPE_CODES.get(dtype)
        if code not in self._dtype_codes:
            raise _capi.UserError(f"kernel {self.name} has no {dtype!r} variant (it has {', '.join(self.dtypes)})")
        return {
            p.name: _capi.DTYPE_NAMES[self._param(i, code).dtype]
            for i, p in enumerate(self.params)
            if p.kind == "tensor"
        }

    def __repr__(self):
        return f"<mtile kernel {self.name}({', '.join(p.name for p in self.params)}) dims {','.join(self.dims)}>"


_by_name = {}


def kernel(name):
    """The registered kernel `name`; UserError listing the known names when there is none."""
    k = _by_name.get(name)
    if k is None:
        handle = ctypes.c_void_p()
        _capi.check(_capi.kernel_find(name.encode(), ctypes.byref(handle)))
        k = _by_name[name] = Kernel(handle.value)
    return k


def kernels():
    """Every registered kernel: the standard library, then those load_library added."""
    count = ctypes.c_size_t()
    _capi.check(_capi.kernel_count(ctypes.byref(count)))
    out = []
    for i in range(count.value):
        handle = ctypes.c_void_p()
        _capi.check(_capi.kernel_at(i, ctypes.byref(handle)))
        out.append(kernel(_capi.kernel_name(handle.value).decode()))
    return out


def load_library(path):
    """Loads a shared library of kernels (see examples/kernel_library) and returns the names it added.

    It is built against include_dir() and links library_dir()/libmtile_c.so; mtile calls its
    `extern "C" void mtile_register_kernels()`. Loading it again adds nothing.
    """
    count = ctypes.c_size_t()
    _capi.check(_capi.kernel_count(ctypes.byref(count)))
    before = count.value
    added = ctypes.c_size_t()
    _capi.check(_capi.load_library(str(path).encode(), ctypes.byref(added)))
    return [k.name for k in kernels()[before : before + added.value]]
