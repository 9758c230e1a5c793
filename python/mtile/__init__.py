"""mtile: GPU kernels written as C++ code, run on torch tensors and numpy arrays.

    import torch, mtile
    x, residual = torch.randn(2, 32, 4096, dtype=torch.bfloat16, device="cuda").unbind(0)
    w = torch.ones(4096, dtype=torch.bfloat16, device="cuda")
    out = mtile.rms_norm_residual(x, residual, w, 1e-6)   # on torch's current stream
    mtile.add_rms_norm_(x, residual, w, 1e-6)             # in place; CUDA-graph capturable

CUDA tensors run on mtile's CUDA backend, on torch's current stream; CPU tensors and numpy arrays
on its CPU engine. Every kernel checks its contract before it runs; a refusal is a UserError
naming the kernel, the parameter, the rule and the values. mtile.launch runs any registered
kernel, including those of a library loaded with mtile.load_library.
"""
import os

from . import _capi
from ._capi import DeviceError, Error, InternalError, UserError, library_path
from ._ops import (
    add_rms_norm_,
    ffai_rms_norm_residual,
    launch,
    mt_rms_inv_scalar,
    mt_rms_norm,
    mt_rms_norm_small,
    mt_rms_norm_wide,
    rms_norm_residual,
    softmax,
    vector_add,
)
from ._library_ops import (
    add,
    add_rms_norm_quant_fp8,
    add_rms_norm_unrounded_,
    argmax,
    attention_decode,
    attention_prefill,
    gelu,
    gelu_tanh,
    gemma_add_rms_norm_,
    gemma_rms_norm,
    gemm,
    gemv,
    histogram,
    layer_norm,
    layer_norm_no_bias,
    logsumexp,
    mul,
    rms_norm,
    rms_norm_per_head,
    rms_norm_rope,
    rope,
    rope_interleaved,
    silu_mul,
    softmax_masked,
    top_k,
)
from ._registry import Kernel, Param, kernel, kernels, load_library
from ._torch_ops import registered as torch_ops_registered

__version__ = _capi.version().decode()


def include_dir():
    """Headers to build a kernel library against (mtile/mtile.hpp, mtile/mtile.h, dlpack/dlpack.h):
    the installed package's, or the repository's include/ when run from the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "include")
    return installed if os.path.isdir(installed) else os.path.join(here, "..", "..", "include")


def library_dir():
    """The folder of libmtile_c.so, which a kernel library links (-L<here> -lmtile_c)."""
    return os.path.dirname(library_path())


__all__ = [
    "DeviceError", "Error", "InternalError", "Kernel", "Param", "UserError", "add", "add_rms_norm_",
    "add_rms_norm_quant_fp8", "add_rms_norm_unrounded_", "argmax", "attention_decode", "attention_prefill",
    "ffai_rms_norm_residual",
    "gelu", "gelu_tanh", "gemma_add_rms_norm_", "gemma_rms_norm", "gemm", "gemv", "histogram", "include_dir", "kernel", "kernels", "launch", "layer_norm",
    "layer_norm_no_bias", "library_dir", "library_path", "load_library", "logsumexp", "mt_rms_inv_scalar",
    "mt_rms_norm", "mt_rms_norm_small", "mt_rms_norm_wide", "mul", "rms_norm", "rms_norm_per_head",
    "rms_norm_residual", "rms_norm_rope", "rope", "rope_interleaved", "silu_mul", "softmax", "softmax_masked",
    "top_k", "torch_ops_registered", "vector_add",
]
