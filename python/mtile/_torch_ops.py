"""The library functions as torch custom ops (torch.ops.mtile.*), so that torch.compile graphs hold
them: each has a fake implementation (shapes and dtypes only) for tracing, and runs the same
launch as the plain function. Needs torch >= 2.4 (torch.library.custom_op); with an older torch
the plain functions still work, outside torch.compile.
"""
from typing import Optional

from . import _library_ops as _lib
from . import _ops
from ._launch import torch

registered = False

if torch is not None and hasattr(torch.library, "custom_op"):
    from torch import Tensor

    def _define(name, fn, fake, mutates_args=()):
        op = torch.library.custom_op(f"mtile::{name}", fn, mutates_args=mutates_args)
        op.register_fake(fake)
        return op

    def _fake_like_x(x, *args):
        return torch.empty_like(x)

    def rms_norm_residual(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> Tensor:
        return _ops._norm("rms_norm_residual", x, residual, w, eps, None)

    def ffai_rms_norm_residual(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> Tensor:
        return _ops._norm("ffai_rms_norm_residual", x, residual, w, eps, None)

    def mt_rms_norm(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _ops._norm("mt_rms_norm", x, None, w, eps, None)

    def mt_rms_norm_small(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _ops._norm("mt_rms_norm_small", x, None, w, eps, None)

    def mt_rms_norm_wide(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _ops._norm("mt_rms_norm_wide", x, None, w, eps, None)

    def add_rms_norm(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> None:
        _ops._add_rms_norm(x, residual, w, eps)

    def mt_rms_inv_scalar(partial_ssq: Tensor, n: int, eps: float) -> Tensor:
        return _ops._mt_rms_inv_scalar(partial_ssq, n, eps, None)

    def softmax(x: Tensor) -> Tensor:
        return _ops._softmax(x, None)

    def vector_add(a: Tensor, b: Tensor) -> Tensor:
        return _ops._vector_add(a, b, None)

    for _fn in (rms_norm_residual, ffai_rms_norm_residual, mt_rms_norm, mt_rms_norm_small, mt_rms_norm_wide,
                softmax, vector_add):
        _define(_fn.__name__, _fn, _fake_like_x)
    _define("add_rms_norm", add_rms_norm, lambda x, residual, w, eps: None, mutates_args=("x", "residual"))
    _define("mt_rms_inv_scalar", mt_rms_inv_scalar, lambda p, n, eps: p.new_empty(p.shape[:-1]))

    # The rest of the library (_library_ops): eps by value.
    def rms_norm(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _lib._scalar_norm("rms_norm", x, w, None, eps, None)

    def gemma_rms_norm(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _lib._scalar_norm("gemma_rms_norm", x, w, None, eps, None)

    def layer_norm(x: Tensor, w: Tensor, b: Tensor, eps: float) -> Tensor:
        return _lib._scalar_norm("layer_norm", x, w, b, eps, None)

    def layer_norm_no_bias(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _lib._scalar_norm("layer_norm_no_bias", x, w, None, eps, None)

    def gemma_add_rms_norm(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> None:
        _lib._add_norm("gemma_add_rms_norm", x, residual, w, eps)

    def add_rms_norm_unrounded(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> None:
        _lib._add_norm("add_rms_norm_unrounded", x, residual, w, eps)

    def add_rms_norm_quant_fp8(x: Tensor, residual: Tensor, w: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        return _lib._add_rms_norm_quant_fp8(x, residual, w, eps, None)

    def rms_norm_per_head(x: Tensor, w: Tensor, eps: float) -> Tensor:
        return _lib._rms_norm_per_head(x, w, eps, None)

    def rope(x: Tensor, positions: Tensor, cos_sin: Tensor) -> Tensor:
        return _lib._rotary("rope", x, None, positions, cos_sin, 0.0, None)

    def rope_interleaved(x: Tensor, positions: Tensor, cos_sin: Tensor) -> Tensor:
        return _lib._rotary("rope_interleaved", x, None, positions, cos_sin, 0.0, None)

    def rms_norm_rope(x: Tensor, w: Tensor, positions: Tensor, cos_sin: Tensor, eps: float) -> Tensor:
        return _lib._rotary("rms_norm_rope", x, w, positions, cos_sin, eps, None)

    def softmax_masked(x: Tensor) -> Tensor:
        return _lib._by_row("softmax_masked", x, None, x.shape, "x's", "x")

    def logsumexp(x: Tensor) -> Tensor:
        return _lib._by_row("logsumexp", x, None, x.shape[:-1], "x's rows", "f32")

    def argmax(x: Tensor) -> Tensor:
        return _lib._by_row("argmax", x, None, x.shape[:-1], "x's rows", "u32")

    def top_k(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
        return _lib._top_k(x, k, None)

    def silu_mul(x: Tensor) -> Tensor:
        return _lib._silu_mul(x, None)

    def gelu(x: Tensor) -> Tensor:
        return _lib._unary("gelu", x, None)

    def gelu_tanh(x: Tensor) -> Tensor:
        return _lib._unary("gelu_tanh", x, None)

    def add(a: Tensor, b: Tensor) -> Tensor:
        return _lib._binary("add", a, b, None)

    def mul(a: Tensor, b: Tensor) -> Tensor:
        return _lib._binary("mul", a, b, None)

    def histogram(x: Tensor, counts: Tensor, lo: float, hi: float) -> None:
        _lib._histogram(x, counts, lo, hi)

    def gemv(x: Tensor, w: Tensor) -> Tensor:
        return _lib._gemv(x, w, None)

    def attention_decode(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        return _lib._attention_decode(q, k, v, scale, None, None)

    def attention_prefill(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        return _lib._attention_prefill(q, k, v, scale, None)

    def gemm(a: Tensor, w: Tensor, bias: Optional[Tensor], act: Optional[str], residual: Optional[Tensor]) -> Tensor:
        return _lib._gemm(a, w, bias, residual, act, None)

    for _fn in (rms_norm, gemma_rms_norm, layer_norm, layer_norm_no_bias, rms_norm_per_head, rope, rope_interleaved,
                rms_norm_rope, softmax_masked, gelu, gelu_tanh, add, mul):
        _define(_fn.__name__, _fn, _fake_like_x)
    for _fn in (gemma_add_rms_norm, add_rms_norm_unrounded):
        _define(_fn.__name__, _fn, lambda x, residual, w, eps: None, mutates_args=("x", "residual"))
    _define("add_rms_norm_quant_fp8", add_rms_norm_quant_fp8,
            lambda x, residual, w, eps: (torch.empty_like(x, dtype=torch.float8_e4m3fn),
                                         x.new_empty(x.shape[:-1], dtype=torch.float32)),
            mutates_args=("residual",))
    _define("logsumexp", logsumexp, lambda x: x.new_empty(x.shape[:-1], dtype=torch.float32))
    _define("argmax", argmax, lambda x: x.new_empty(x.shape[:-1], dtype=torch.uint32))
    _define("top_k", top_k, lambda x, k: (x.new_empty((*x.shape[:-1], k)),
                                          x.new_empty((*x.shape[:-1], k), dtype=torch.uint32)))
    _define("silu_mul", silu_mul, lambda x: x.new_empty((*x.shape[:-1], x.shape[-1] // 2)))
    _define("histogram", histogram, lambda x, counts, lo, hi: None, mutates_args=("counts",))
    _define("gemv", gemv, lambda x, w: x.new_empty((*x.shape[:-1], w.shape[0])))
    _define("attention_decode", attention_decode, lambda q, k, v, scale: torch.empty_like(q))
    _define("attention_prefill", attention_prefill, lambda q, k, v, scale: torch.empty_like(q))
    _define("gemm", gemm, lambda a, w, bias, act, residual: a.new_empty((*a.shape[:-1], w.shape[0])))
    registered = True
