"""Triton kernels of the peer benchmark's three semantics, one program per row, math in f32 (the
Triton tutorial's RMS/layer-norm pattern): plain = rms_norm, post = rms_norm_residual, pre =
add_rms_norm (in place)."""
import triton
import triton.language as tl


@triton.jit
def _plain_kernel(X, W, OUT, eps, n, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(X + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    inv = tl.rsqrt(tl.sum(x * x, axis=0) / n + eps)
    tl.store(OUT + row * n + cols, (x * inv * w).to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _post_kernel(X, R, W, OUT, eps, n, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(X + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(R + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    inv = tl.rsqrt(tl.sum(x * x, axis=0) / n + eps)
    tl.store(OUT + row * n + cols, (r + x * inv * w).to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _pre_kernel(X, R, W, eps, n, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(X + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(R + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    s = (x + r).to(R.dtype.element_ty)  # the sum, rounded as it is stored, is what is normalised
    tl.store(R + row * n + cols, s, mask=mask)
    s = s.to(tl.float32)
    inv = tl.rsqrt(tl.sum(s * s, axis=0) / n + eps)
    tl.store(X + row * n + cols, (s * inv * w).to(X.dtype.element_ty), mask=mask)


def _launch_shape(x):
    n = x.shape[-1]
    block = triton.next_power_of_2(n)
    return x.numel() // n, n, block, min(max(block // 256, 1), 16)


def plain(x, w, eps, out):
    rows, n, block, warps = _launch_shape(x)
    _plain_kernel[(rows,)](x, w, out, eps, n, BLOCK=block, num_warps=warps)
    return out


def post(x, residual, w, eps, out):
    rows, n, block, warps = _launch_shape(x)
    _post_kernel[(rows,)](x, residual, w, out, eps, n, BLOCK=block, num_warps=warps)
    return out


def pre(x, residual, w, eps):
    rows, n, block, warps = _launch_shape(x)
    _pre_kernel[(rows,)](x, residual, w, eps, n, BLOCK=block, num_warps=warps)
