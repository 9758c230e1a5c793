"""The library functions as torch custom ops (torch.ops.mtile.*), so that torch.compile graphs hold
them: each has a fake implementation (shapes and dtypes only) for tracing, and runs the same
launch as the plain function. Needs torch >= 2.4 (torch.library.custom_op); with an older torch
the plain functions still work, outside torch.compile.
"""
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
    registered = True
