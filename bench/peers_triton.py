"""Triton kernels of the peer benchmark's three semantics, one program per row, math in f32 (the
Triton tutorial's RMS/layer-norm pattern): plain = rms_norm, post = rms_norm_residual, pre =
add_rms_norm (in place); and the benchmark's L2 flush (evict_l2)."""
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


# ---- the benchmark's L2 flush ---------------------------------------------------------------------


@triton.jit
def _read_words(P, SINK, n, BLOCK: tl.constexpr, LAST: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    if LAST:
        v = tl.load(P + i, mask=i < n, other=0, eviction_policy="evict_last")
    else:
        v = tl.load(P + i, mask=i < n, other=0, eviction_policy="evict_first")
    s = tl.xor_sum(v, 0)
    tl.store(SINK, s, mask=s == 0x1234567)  # never in practice: the loads must stay


def evict_l2(words, sink):
    """Reads int32 `words` (more than L2 holds) twice: with evict_last, which displaces lines a kernel
    loaded with that policy (torch.compile's and mtile's kernels do; a plain read leaves them in
    L2, bench/NOTES.md, eleventh session), then with evict_first, so that the timed kernel's lines
    displace these first, as they would an empty cache's."""
    n, block = words.numel(), 8192
    for last in (True, False):
        _read_words[(triton.cdiv(n, block),)](words, sink, n, BLOCK=block, LAST=last)
