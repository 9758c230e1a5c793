"""The rest of the standard library as Python functions named after its kernels (issue 11).

As in _ops: torch tensors (CPU or CUDA) or numpy arrays in, the kernel's dims derived from the
shapes, the output allocated unless `out=` is given (a pair where the function returns two), and
each calls its torch custom op (torch.ops.mtile.*) while torch.compile traces. `eps` (and
histogram's lo, hi) go to the kernel by value, as Scalar<f32> parameters: no eps tensor is made.
Indices and counts are u32 (torch.uint32: torch >= 2.3). numpy has no fp8: add_rms_norm_quant_fp8
gives numpy callers a uint8 array of the e4m3 bit patterns (torch callers torch.float8_e4m3fn).
"""
import math

from . import _capi
from ._capi import UserError
from ._launch import NumpyArray, TorchTensor, numpy, torch
from ._ops import _compiled, _compiling, _empty_like, _launch, _row_weight, _rows, _same_shape, _shape
from ._registry import kernel


def _check_shape(fn, name, t, shape, what):
    if _shape(fn, name, t) != tuple(shape):
        raise UserError(f"mtile.{fn}: {name} has shape {tuple(t.shape)}; it must be {tuple(shape)}, {what}")


def _torch_dtype(fn, dtype):
    name = {"f32": "float32", "u32": "uint32", "f8e4m3": "float8_e4m3fn"}[dtype]
    if not hasattr(torch, name):
        raise UserError(f"mtile.{fn}: its output is torch.{name}, which this torch ({torch.__version__}) lacks")
    return getattr(torch, name)


def _new(fn, x, shape, dtype):
    """An empty output of `shape` beside x: dtype "x" (x's), "f32", "u32" or "f8e4m3" (numpy: uint8 bits)."""
    if dtype == "x" and tuple(shape) == tuple(x.shape):
        return _empty_like(x)
    if isinstance(x, TorchTensor):
        return x.new_empty(shape) if dtype == "x" else x.new_empty(shape, dtype=_torch_dtype(fn, dtype))
    numpy_dtypes = {"x": x.dtype, "f32": numpy.float32, "u32": numpy.uint32, "f8e4m3": numpy.uint8}
    return numpy.empty(shape, dtype=numpy_dtypes[dtype])


def _out(fn, x, out, shape, what, dtype="x", name="out"):
    if out is None:
        return _new(fn, x, shape, dtype)
    _check_shape(fn, name, out, shape, what)
    return out


def _pair(fn, out, names):
    if out is not None and not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise UserError(f"mtile.{fn}: out is a {type(out).__name__}; it must be a pair ({', '.join(names)})")
    return (None, None) if out is None else out


def _compiled_pair(op, out, *args):
    result = op(*args)
    if out is None:
        return result
    for o, r in zip(out, result):
        o.copy_(r)
    return tuple(out)


def _fp8(fn, x, q):
    """q as the kernel's f8e4m3 tensor: beside numpy x, a uint8 array as a record of e4m3 bits; else as it is."""
    if not (isinstance(x, NumpyArray) and isinstance(q, NumpyArray)):
        return q  # torch (float8_e4m3fn), or a mismatch that _launch refuses by name
    if q.dtype != numpy.uint8:
        raise UserError(f"mtile.{fn}: out is {q.dtype}; numpy has no fp8, so it must be uint8 (e4m3 bit patterns)")
    if not (q.flags.c_contiguous and q.flags.writeable):
        raise UserError(f"mtile.{fn}: out must be a C-contiguous, writeable uint8 array")
    return (q.ctypes.data, q.size, _capi.F8E4M3, -1)


# ---- norms: rows = the product of the leading dims, n = the last; eps a Scalar<f32> by value --------


def _scalar_norm(fn, x, w, b, eps, out):
    rows, n = _rows(fn, "x", x)
    _row_weight(fn, w, n)
    if b is not None:
        _check_shape(fn, "b", b, (n,), "x's last dim")
    out = _out(fn, x, out, x.shape, "x's")
    _launch(fn, kernel(fn), (x, w, out) if b is None else (x, w, b, out), (rows, n), x, (float(eps),))
    return out


def rms_norm(x, w, eps=1e-6, *, out=None):
    """out = x * rsqrt(mean(x^2) + eps) * w over the last dim, rows of any length."""
    if _compiling():
        return _compiled(torch.ops.mtile.rms_norm, out, x, w, float(eps))
    return _scalar_norm("rms_norm", x, w, None, eps, out)


def gemma_rms_norm(x, w, eps=1e-6, *, out=None):
    """out = x * rsqrt(mean(x^2) + eps) * (1 + w) (Gemma's weights store w - 1), 1 + w in f32."""
    if _compiling():
        return _compiled(torch.ops.mtile.gemma_rms_norm, out, x, w, float(eps))
    return _scalar_norm("gemma_rms_norm", x, w, None, eps, out)


def layer_norm(x, w, b, eps=1e-5, *, out=None):
    """out = (x - mean(x)) * rsqrt(var(x) + eps) * w + b over the last dim (biased variance, f32)."""
    if _compiling():
        return _compiled(torch.ops.mtile.layer_norm, out, x, w, b, float(eps))
    return _scalar_norm("layer_norm", x, w, b, eps, out)


def layer_norm_no_bias(x, w, eps=1e-5, *, out=None):
    """out = (x - mean(x)) * rsqrt(var(x) + eps) * w over the last dim."""
    if _compiling():
        return _compiled(torch.ops.mtile.layer_norm_no_bias, out, x, w, float(eps))
    return _scalar_norm("layer_norm_no_bias", x, w, None, eps, out)


def _add_norm(fn, x, residual, w, eps):
    name = fn + "_"
    rows, n = _rows(name, "x", x)
    _same_shape(name, "residual", residual, x.shape)
    _row_weight(name, w, n)
    _launch(name, kernel(fn), (x, residual, w), (rows, n), x, (float(eps),))


def gemma_add_rms_norm_(x, residual, w, eps=1e-6):
    """In place: residual += x (rounded as stored); x = residual * rsqrt(mean(residual^2) + eps) * (1 + w)."""
    if _compiling():
        torch.ops.mtile.gemma_add_rms_norm(x, residual, w, float(eps))
        return None
    _add_norm("gemma_add_rms_norm", x, residual, w, eps)
    return None


def add_rms_norm_unrounded_(x, residual, w, eps=1e-6):
    """In place: s = x + residual in f32; residual = s (rounded); x = s * rsqrt(mean(s^2) + eps) * w."""
    if _compiling():
        torch.ops.mtile.add_rms_norm_unrounded(x, residual, w, float(eps))
        return None
    _add_norm("add_rms_norm_unrounded", x, residual, w, eps)
    return None


def _add_rms_norm_quant_fp8(x, residual, w, eps, out):
    fn = "add_rms_norm_quant_fp8"
    rows, n = _rows(fn, "x", x)
    _same_shape(fn, "residual", residual, x.shape)
    _row_weight(fn, w, n)
    q, scale = _pair(fn, out, ("out", "scale"))
    q = _out(fn, x, q, x.shape, "x's", "f8e4m3")
    scale = _out(fn, x, scale, x.shape[:-1], "x's rows", "f32", "scale")
    _launch(fn, kernel(fn), (x, residual, w, _fp8(fn, x, q), scale), (rows, n), x, (float(eps),))
    return q, scale


def add_rms_norm_quant_fp8(x, residual, w, eps=1e-6, *, out=None):
    """residual += x (in place); y = rms_norm(residual, w, eps); returns (e4m3(y / scale), scale = max|y| / 448)."""
    if _compiling():
        out = _pair("add_rms_norm_quant_fp8", out, ("out", "scale")) if out is not None else None
        return _compiled_pair(torch.ops.mtile.add_rms_norm_quant_fp8, out, x, residual, w, float(eps))
    return _add_rms_norm_quant_fp8(x, residual, w, eps, out)


# ---- per-head kernels: x = [..., heads, head_dim], tokens = the product of the leading dims ----------


def _heads(fn, x):
    shape = _shape(fn, "x", x)
    if len(shape) < 2:
        raise UserError(f"mtile.{fn}: x has shape {tuple(shape)}; it needs at least 2 dims (tokens x heads x head_dim)")
    return math.prod(shape[:-2]), shape[-2], shape[-1]


def _rms_norm_per_head(x, w, eps, out):
    fn = "rms_norm_per_head"
    tokens, heads, head_dim = _heads(fn, x)
    _row_weight(fn, w, head_dim)
    out = _out(fn, x, out, x.shape, "x's")
    _launch(fn, kernel(fn), (x, w, out), (tokens, heads, head_dim), x, (float(eps),))
    return out


def rms_norm_per_head(x, w, eps=1e-6, *, out=None):
    """out[..., h, :] = x[..., h, :] * rsqrt(mean(x[..., h, :]^2) + eps) * w: RMSNorm of each head (q/k norm)."""
    if _compiling():
        return _compiled(torch.ops.mtile.rms_norm_per_head, out, x, w, float(eps))
    return _rms_norm_per_head(x, w, eps, out)


def _rotary(fn, x, w, positions, cos_sin, eps, out):
    tokens, heads, head_dim = _heads(fn, x)
    _check_shape(fn, "positions", positions, x.shape[:-2], "x's leading dims (one int32 position a token)")
    cs = _shape(fn, "cos_sin", cos_sin)
    if len(cs) != 2 or cs[1] != head_dim:
        raise UserError(f"mtile.{fn}: cos_sin has shape {tuple(cs)}; it must be (max_pos, {head_dim}), x's head_dim")
    if w is not None:
        _row_weight(fn, w, head_dim)
    out = _out(fn, x, out, x.shape, "x's")
    tensors = (x, positions, cos_sin, out) if w is None else (x, w, positions, cos_sin, out)
    _launch(fn, kernel(fn), tensors, (tokens, heads, head_dim, cs[0]), x, () if w is None else (float(eps),))
    return out


def rope(x, positions, cos_sin, *, out=None):
    """out = rotate-half (NeoX) rotary embedding: pairs (i, i + d/2) turned by cos_sin[positions] = [cos | sin]."""
    if _compiling():
        return _compiled(torch.ops.mtile.rope, out, x, positions, cos_sin)
    return _rotary("rope", x, None, positions, cos_sin, 0.0, out)


def rope_interleaved(x, positions, cos_sin, *, out=None):
    """out = interleaved (GPT-J) rotary embedding: pairs (2i, 2i + 1) turned by cos_sin[positions] = [cos | sin]."""
    if _compiling():
        return _compiled(torch.ops.mtile.rope_interleaved, out, x, positions, cos_sin)
    return _rotary("rope_interleaved", x, None, positions, cos_sin, 0.0, out)


def rms_norm_rope(x, w, positions, cos_sin, eps=1e-6, *, out=None):
    """out = rope(rms_norm_per_head(x, w, eps), positions, cos_sin), the normalised heads not rounded."""
    if _compiling():
        return _compiled(torch.ops.mtile.rms_norm_rope, out, x, w, positions, cos_sin, float(eps))
    return _rotary("rms_norm_rope", x, w, positions, cos_sin, eps, out)


# ---- rows: softmax_masked, logsumexp, argmax, top_k, silu_mul -----------------------------------------


def _by_row(fn, x, out, shape, what, dtype):
    rows, n = _rows(fn, "x", x)
    out = _out(fn, x, out, shape, what, dtype)
    _launch(fn, kernel(fn), (x, out), (rows, n), x)
    return out


def softmax_masked(x, *, out=None):
    """out = exp(x - max) / sum(exp(x - max)) over the last dim (masked loads and stores)."""
    if _compiling():
        return _compiled(torch.ops.mtile.softmax_masked, out, x)
    return _by_row("softmax_masked", x, out, _shape("softmax_masked", "x", x), "x's", "x")


def logsumexp(x, *, out=None):
    """out = log(sum(exp(x))) over the last dim, in f32 (shape x.shape[:-1])."""
    if _compiling():
        return _compiled(torch.ops.mtile.logsumexp, out, x)
    return _by_row("logsumexp", x, out, _shape("logsumexp", "x", x)[:-1], "x's rows", "f32")


def argmax(x, *, out=None):
    """out = the index of the largest value of the last dim (u32; ties: the lowest; NaN skipped)."""
    if _compiling():
        return _compiled(torch.ops.mtile.argmax, out, x)
    return _by_row("argmax", x, out, _shape("argmax", "x", x)[:-1], "x's rows", "u32")


def _top_k(x, k, out):
    fn = "top_k"
    rows, n = _rows(fn, "x", x)
    shape = (*x.shape[:-1], int(k))
    values, indices = _pair(fn, out, ("values", "indices"))
    values = _out(fn, x, values, shape, "x's rows x k", "x", "values")
    indices = _out(fn, x, indices, shape, "x's rows x k", "u32", "indices")
    _launch(fn, kernel(fn), (x, values, indices), (rows, n, int(k)), x)
    return values, indices


def top_k(x, k, *, out=None):
    """(values, indices): the k <= 64 largest of the last dim, largest first (ties: lower index), indices u32."""
    if _compiling():
        out = _pair("top_k", out, ("values", "indices")) if out is not None else None
        return _compiled_pair(torch.ops.mtile.top_k, out, x, int(k))
    return _top_k(x, k, out)


def _silu_mul(x, out):
    fn = "silu_mul"
    rows, n2 = _rows(fn, "x", x)
    if n2 % 2:
        raise UserError(f"mtile.{fn}: x has shape {tuple(x.shape)}; its last dim must be even ([gate | up])")
    out = _out(fn, x, out, (*x.shape[:-1], n2 // 2), "x's with the last dim halved")
    _launch(fn, kernel(fn), (x, out), (rows, n2 // 2), x)
    return out


def silu_mul(x, *, out=None):
    """SwiGLU: out = silu(g) * u = g * sigmoid(g) * u, where x = [..., 2n] = [g | u]; out = [..., n]."""
    if _compiling():
        return _compiled(torch.ops.mtile.silu_mul, out, x)
    return _silu_mul(x, out)


# ---- elementwise over every element: n = x.size ----------------------------------------------------


def _unary(fn, x, out):
    shape = _shape(fn, "x", x)
    out = _out(fn, x, out, shape, "x's")
    _launch(fn, kernel(fn), (x, out), (math.prod(shape),), x)
    return out


def gelu(x, *, out=None):
    """out = 0.5 x (1 + erf(x / sqrt(2))), the exact GELU."""
    if _compiling():
        return _compiled(torch.ops.mtile.gelu, out, x)
    return _unary("gelu", x, out)


def gelu_tanh(x, *, out=None):
    """out = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), GELU's tanh approximation."""
    if _compiling():
        return _compiled(torch.ops.mtile.gelu_tanh, out, x)
    return _unary("gelu_tanh", x, out)


def _binary(fn, a, b, out):
    shape = _shape(fn, "a", a)
    _same_shape(fn, "b", b, shape, like="a")
    out = _out(fn, a, out, shape, "a's")
    _launch(fn, kernel(fn), (a, b, out), (math.prod(shape),), a)
    return out


def add(a, b, *, out=None):
    """out = a + b, element by element (same shapes, no broadcasting)."""
    if _compiling():
        return _compiled(torch.ops.mtile.add, out, a, b)
    return _binary("add", a, b, out)


def mul(a, b, *, out=None):
    """out = a * b, element by element (same shapes, no broadcasting)."""
    if _compiling():
        return _compiled(torch.ops.mtile.mul, out, a, b)
    return _binary("mul", a, b, out)


def _histogram(x, counts, lo, hi):
    fn = "histogram"
    shape = _shape(fn, "x", x)
    _launch(fn, kernel(fn), (x, counts), (math.prod(shape), counts.shape[0]), x, (float(lo), float(hi)))


def _zero_counts(fn, x, bins):
    if int(bins) < 1:
        raise UserError(f"mtile.{fn}: bins = {bins}; it must be at least 1")
    if isinstance(x, TorchTensor):  # zeros as int32, seen as u32: filling u32 needs a newer torch than having it
        return torch.zeros(int(bins), dtype=torch.int32, device=x.device).view(_torch_dtype(fn, "u32"))
    return numpy.zeros(int(bins), dtype=numpy.uint32)


def histogram(x, bins, lo, hi, *, counts=None):
    """counts[b] += #{x in bin b of `bins` equal bins over [lo, hi]}, u32 (zeros unless given); returns counts."""
    if counts is None:
        counts = _zero_counts("histogram", x, bins)
    else:
        _check_shape("histogram", "counts", counts, (int(bins),), "(bins,)")
    if _compiling():
        torch.ops.mtile.histogram(x, counts, float(lo), float(hi))
    else:
        _histogram(x, counts, lo, hi)
    return counts


# ---- decoding: gemv, attention_decode; prefill ---------------------------------------------------------------


def _gemv(x, w, out):
    fn = "gemv"
    m, k = _rows(fn, "x", x)
    ws = _shape(fn, "w", w)
    if len(ws) != 2 or ws[1] != k:
        raise UserError(f"mtile.{fn}: w has shape {tuple(ws)}; it must be (n, {k}), n rows of x's last dim")
    out = _out(fn, x, out, (*x.shape[:-1], ws[0]), "x's leading dims and w's rows")
    _launch(fn, kernel(fn), (x, w, out), (m, ws[0], k), x)
    return out


def gemv(x, w, *, out=None):
    """out = x @ w.T (a Linear without bias) for a decode batch: x [..., k] of 1 to 8 rows, w [n, k], f32 sums."""
    if _compiling():
        return _compiled(torch.ops.mtile.gemv, out, x, w)
    return _gemv(x, w, out)


_ACTIVATIONS = {None: 0, "silu": 1, "gelu": 2}


def _gemm(a, w, bias, residual, act, out):
    fn = "gemm"
    if act not in _ACTIVATIONS:
        raise UserError(f"mtile.{fn}: act={act!r}; it is None, 'silu' or 'gelu'")
    if residual is not None and (bias is not None or act is not None):
        raise UserError(f"mtile.{fn}: residual= adds after the product alone; it takes no bias or act")
    m, k = _rows(fn, "a", a)
    ws = _shape(fn, "w", w)
    if len(ws) != 2 or ws[1] != k:
        raise UserError(f"mtile.{fn}: w has shape {tuple(ws)}; it must be (n, {k}), n rows of a's last dim")
    n = ws[0]
    shape = (*a.shape[:-1], n)
    if bias is not None:
        _check_shape(fn, "bias", bias, (n,), "(n,), w's rows")
    if residual is not None:
        _check_shape(fn, "residual", residual, shape, "a's leading dims and w's rows")
    out = _out(fn, a, out, shape, "a's leading dims and w's rows")
    if residual is not None:
        _launch(fn, kernel("gemm_residual"), (a, w, residual, out), (m, n, k), a)
    elif bias is not None:
        _launch(fn, kernel("gemm_bias"), (a, w, bias, out), (m, n, k, _ACTIVATIONS[act]), a)
    else:
        _launch(fn, kernel("gemm"), (a, w, out), (m, n, k, _ACTIVATIONS[act]), a)
    return out


def gemm(a, w, bias=None, *, act=None, residual=None, out=None):
    """out = act(a @ w.T + bias), or a @ w.T + residual: a [..., k] (bf16 or f16), w [n, k] (a torch
    Linear weight), k a multiple of 8; tensor-core MMA with f32 sums. act: None, 'silu' or 'gelu'."""
    if _compiling():
        return _compiled(torch.ops.mtile.gemm, out, a, w, bias, act, residual)
    return _gemm(a, w, bias, residual, act, out)


def _split_cap(batch, kv_heads, seq):
    """The most splits attention_decode takes: its spec's split_cap rule, which sizes the workspace."""
    return min(-(-seq // 64), -(-4096 // (batch * kv_heads)), 128)


_counters = {}  # (device, count) -> (tensor, its record): zero, and attention_decode leaves them zero


def _zero_counters(fn, q, count, counters):
    """attention_decode's u32 counters: `counters` if given, else zeros made once per device and count."""
    if counters is not None:
        _check_shape(fn, "counters", counters, (count,), "(batch * kv_heads,)")
        return counters
    if not isinstance(q, TorchTensor):
        return numpy.zeros(count, dtype=numpy.uint32)
    device = q.get_device() if q.is_cuda else -1
    cached = _counters.get((device, count))
    if cached is None:
        if device != -1 and torch.cuda.is_current_stream_capturing():
            raise UserError(
                f"mtile.{fn}: its counters for cuda:{device} are first made inside a CUDA graph capture; call "
                f"mtile.{fn} once before capturing (or pass counters=)"
            )
        t = torch.zeros(count, dtype=torch.int32, device=q.device).view(_torch_dtype(fn, "u32"))
        cached = _counters[(device, count)] = (t, (t.data_ptr(), count, _capi.U32, device))
    return cached[1]


def _attention_decode(q, k, v, scale, out, counters):
    fn = "attention_decode"
    qs, ks = _shape(fn, "q", q), _shape(fn, "k", k)
    if len(qs) != 3:
        raise UserError(f"mtile.{fn}: q has shape {tuple(qs)}; it must be (batch, heads, d)")
    batch, heads, d = qs
    if len(ks) != 4 or ks[0] != batch or ks[3] != d:
        raise UserError(
            f"mtile.{fn}: k has shape {tuple(ks)}; it must be (batch, kv_heads, seq, d) = ({batch}, kv_heads, seq, {d})"
        )
    _check_shape(fn, "v", v, ks, "k's")
    kv_heads, seq = ks[1], ks[2]
    out = _out(fn, q, out, qs, "q's")
    size = batch * heads * _split_cap(batch, kv_heads, seq) * (d + 2)  # partials of the splits, f32
    if isinstance(q, TorchTensor):
        workspace = q.new_empty(size, dtype=torch.float32)
    else:
        workspace = numpy.empty(size, numpy.float32)
    counters = _zero_counters(fn, q, batch * kv_heads, counters)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    _launch(fn, kernel(fn), (q, k, v, out, workspace, counters), (batch, heads, kv_heads, seq, d), q, (scale,))
    return out


def attention_decode(q, k, v, scale=None, *, out=None, counters=None):
    """Decode attention: out[b, h] = softmax(scale * q[b, h] . k[b, h // group]) @ v[b, h // group] over the
    sequence, q [batch, heads, d], k and v [batch, kv_heads, seq, d] (heads a multiple of kv_heads; GQA), scale
    1 / sqrt(d) by default. The kernel splits long sequences; its u32 counters (batch * kv_heads, zero) are made
    once per device and size and left zero by every launch: calls that may run at once on different streams
    pass their own `counters=`."""
    if _compiling():
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        return _compiled(torch.ops.mtile.attention_decode, out, q, k, v, scale)
    return _attention_decode(q, k, v, scale, out, counters)


def _attention_prefill(q, k, v, scale, out):
    fn = "attention_prefill"
    qs, ks = _shape(fn, "q", q), _shape(fn, "k", k)
    if len(qs) != 4:
        raise UserError(f"mtile.{fn}: q has shape {tuple(qs)}; it must be (batch, heads, seq, d)")
    batch, heads, seq, d = qs
    if len(ks) != 4 or ks[0] != batch or ks[2] != seq or ks[3] != d:
        raise UserError(f"mtile.{fn}: k has shape {tuple(ks)}; it must be (batch, kv_heads, seq, d) = "
                        f"({batch}, kv_heads, {seq}, {d})")
    _check_shape(fn, "v", v, ks, "k's")
    out = _out(fn, q, out, qs, "q's")
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    _launch(fn, kernel(fn), (q, k, v, out), (batch, heads, ks[1], seq, d), q, (scale,))
    return out


def attention_prefill(q, k, v, scale=None, *, out=None):
    """Causal attention over a prompt: out[b, h, i] = softmax_{j <= i}(scale * q[b, h, i] . k[b, h // group, j])
    @ v[b, h // group], q [batch, heads, seq, d], k and v [batch, kv_heads, seq, d] (GQA), bf16 or f16, d a
    multiple of 16 up to 256, scale 1 / sqrt(d) by default: scaled_dot_product_attention(is_causal=True,
    enable_gqa=True)."""
    if _compiling():
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        return _compiled(torch.ops.mtile.attention_prefill, out, q, k, v, scale)
    return _attention_prefill(q, k, v, scale, out)
