"""The library functions added for issue 11 (_library_ops) against float64 references written here: on
numpy arrays (f32, f16), torch CPU tensors and CUDA tensors (f32, f16, bf16; skipped without torch or
a CUDA device), with poisoned outputs, odd row counts and rows that are not a multiple of 128; then
one refusal or more per family, and the custom ops under opcheck and torch.compile (CUDA)."""
import math

import mtile
import numpy as np
import pytest
from references import assert_close, poisoned, uniform

try:
    import torch
except ImportError:
    torch = None

HAS_CUDA = torch is not None and torch.cuda.is_available()
needs_torch = pytest.mark.skipif(torch is None, reason="no torch")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
needs_ops = pytest.mark.skipif(not mtile.torch_ops_registered, reason="torch.library.custom_op needs torch >= 2.4")
EPS = 1e-5
POISON_U32 = 0xDEADBEEF
NEW = ["rms_norm", "gemma_rms_norm", "gemma_add_rms_norm_", "add_rms_norm_unrounded_", "add_rms_norm_quant_fp8",
       "rms_norm_per_head", "layer_norm", "layer_norm_no_bias", "rope", "rope_interleaved", "rms_norm_rope",
       "softmax_masked", "logsumexp", "silu_mul", "gelu", "gelu_tanh", "add", "mul", "argmax", "top_k", "histogram",
       "gemv", "attention_decode", "gemm", "attention_prefill"]


class Arrays:
    """Inputs and poisoned outputs of one kind (numpy, torch on a device) and float dtype, and f64 copies."""

    def __init__(self, kind, dtype, device=None):
        self.kind, self.dtype, self.device = kind, dtype, device
        self.name = np.dtype(dtype).name if kind == "numpy" else str(dtype).removeprefix("torch.")

    def __call__(self, a):
        """f32 data as an array of the float dtype under test."""
        return a.astype(self.dtype) if self.kind == "numpy" else torch.from_numpy(a).to(self.dtype).to(self.device)

    def keep(self, a):
        """An array in its own dtype (positions i32, cos_sin f32)."""
        return a if self.kind == "numpy" else torch.from_numpy(a).to(self.device)

    def f64(self, t):
        if self.kind == "numpy":
            return np.asarray(t, np.float64)
        if t.dtype == getattr(torch, "uint32", None):
            return t.view(torch.int32).cpu().numpy().view(np.uint32).astype(np.float64)
        return t.detach().float().cpu().double().numpy()

    def bits(self, q):
        """The e4m3 bit patterns of an fp8 output (numpy gives them as uint8)."""
        return q if self.kind == "numpy" else q.view(torch.uint8).cpu().numpy()

    def poisoned(self, shape, what="x"):
        if self.kind == "numpy":
            if what == "u32":
                return np.full(shape, POISON_U32, np.uint32)
            if what == "f8":
                return np.full(shape, 0x7F, np.uint8)  # e4m3 NaN
            return poisoned(shape, np.float32 if what == "f32" else self.dtype)
        if what == "u32":
            return torch.full(shape, POISON_U32 - 2**32, dtype=torch.int32, device=self.device).view(torch.uint32)
        if what == "f8":
            return torch.full(shape, 0x7F, dtype=torch.uint8, device=self.device).view(torch.float8_e4m3fn)
        dtype = torch.float32 if what == "f32" else self.dtype
        return torch.full(shape, float("nan"), dtype=dtype, device=self.device)


def _backends():
    out = [pytest.param(("numpy", np.float32, None), id="numpy-f32"),
           pytest.param(("numpy", np.float16, None), id="numpy-f16")]
    for device, marks in (("cpu", [needs_torch]), ("cuda", [needs_torch, needs_cuda])):
        for dtype in ("float32", "float16", "bfloat16"):
            out.append(pytest.param(("torch", dtype, device), id=f"torch-{device}-{dtype}", marks=marks))
    return out


@pytest.fixture(params=_backends())
def arrays(request):
    kind, dtype, device = request.param
    return Arrays(kind, getattr(torch, dtype) if kind == "torch" else dtype, device)


def close(arrays, got, want, what):
    assert_close(arrays.f64(got), want, arrays.name, what)


# ---- float64 references ---------------------------------------------------------------------------


def ref_rms_norm(x, w, eps, one_plus=False):
    inv = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * inv * (1.0 + w if one_plus else w)


def ref_layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + (0.0 if b is None else b)


def ref_rope(x, positions, cos_sin, interleaved):
    half = x.shape[-1] // 2
    rows = cos_sin[np.clip(positions, 0, cos_sin.shape[0] - 1)][..., None, :]  # [..., 1, head_dim]
    co, si = rows[..., :half], rows[..., half:]
    a, b = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., :half], x[..., half:])
    out = np.empty_like(x)
    ia, ib = (np.s_[..., 0::2], np.s_[..., 1::2]) if interleaved else (np.s_[..., :half], np.s_[..., half:])
    out[ia], out[ib] = a * co - b * si, b * co + a * si
    return out


def ref_top_k(x, k):
    rows = x.reshape(-1, x.shape[-1])
    order = np.array([np.lexsort((np.arange(r.size), -r))[:k] for r in rows])  # value down, index up
    values = np.take_along_axis(rows, order, axis=1)
    return values.reshape(*x.shape[:-1], k), order.reshape(*x.shape[:-1], k)


def ref_histogram(x, bins, lo, hi):
    """The kernel's f32 binning, step by step."""
    v = x.astype(np.float32).ravel()
    lo32, hi32 = np.float32(lo), np.float32(hi)
    per_unit = np.float32(bins) / (hi32 - lo32)
    inside = (v >= lo32) & (v <= hi32)
    b = np.minimum(np.floor((v[inside] - lo32) * per_unit).astype(np.int64), bins - 1)
    return np.bincount(b, minlength=bins)


def e4m3_value(bits):
    bits = np.asarray(bits, np.int64)
    e, m = (bits >> 3) & 0xF, bits & 7
    v = np.where(e == 0, m / 8 * 2.0**-6, (1 + m / 8) * 2.0 ** (e - 7))
    v = np.where(bits & 0x80, -v, v)
    return np.where((bits & 0x7F) == 0x7F, np.nan, v)


def e4m3_step(v):
    """The spacing of the e4m3 grid at |v| (subnormals below 2^-6)."""
    return 2.0 ** (np.floor(np.log2(np.maximum(np.abs(v), 2.0**-6))) - 3)


def e4m3_round(v):
    """v to the nearest e4m3 value (ties to even), saturated to +-448."""
    step = e4m3_step(v)
    return np.clip(np.round(v / step) * step, -448, 448)


# ---- norms ------------------------------------------------------------------------------------------

SHAPES = [(3, 1000), (5, 333), (2, 3, 200)]  # odd rows; rows not a multiple of 128; rows = 2 * 3


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fn", ["rms_norm", "gemma_rms_norm", "layer_norm", "layer_norm_no_bias"])
def test_norms(arrays, rng, fn, shape):
    lo, hi = (2.0, 4.0) if fn.startswith("layer") else (-1.0, 1.0)  # a mean far from 0: no cancellation
    x, w, b = arrays(uniform(rng, shape, np.float32, lo, hi)), arrays(uniform(rng, shape[-1:], np.float32)), None
    x64, w64 = arrays.f64(x), arrays.f64(w)
    args = (x, w)
    if fn == "layer_norm":
        b = arrays(uniform(rng, shape[-1:], np.float32))
        args = (x, w, b)
    if fn.startswith("layer"):
        want = ref_layer_norm(x64, w64, None if b is None else arrays.f64(b), EPS)
    else:
        want = ref_rms_norm(x64, w64, EPS, one_plus=fn == "gemma_rms_norm")
    out = arrays.poisoned(shape)
    assert getattr(mtile, fn)(*args, EPS, out=out) is out
    close(arrays, out, want, fn)
    got = getattr(mtile, fn)(*args, EPS)
    assert tuple(got.shape) == shape and got.dtype == x.dtype
    close(arrays, got, want, f"{fn}, allocated out")


def test_eps_is_passed_by_value(rng):
    # Tiny rows: eps dominates mean(x^2), so a wrong or stale eps shows.
    x, w = uniform(rng, (3, 100), np.float32) * 1e-3, np.ones(100, np.float32)
    for eps in (1e-6, 1e-2, 1e-6):
        assert_close(mtile.rms_norm(x, w, eps), ref_rms_norm(x.astype(np.float64), w, eps), "float32", f"eps {eps}")
        assert_close(mtile.layer_norm_no_bias(x, w, eps), ref_layer_norm(x.astype(np.float64), w, None, eps),
                     "float32", f"layer_norm eps {eps}")


def rounder(arrays):
    """Rounds float64 values to the dtype under test, as the kernels store a sum."""
    if arrays.kind == "numpy":
        return lambda v: v.astype(arrays.dtype).astype(np.float64)
    return lambda v: torch.from_numpy(v).to(arrays.dtype).double().numpy()


@pytest.mark.parametrize("shape", [(3, 1000), (1, 7168)])
@pytest.mark.parametrize("fn", ["gemma_add_rms_norm_", "add_rms_norm_unrounded_"])
def test_add_rms_norm_in_place(arrays, rng, fn, shape):
    x, residual = arrays(uniform(rng, shape, np.float32)), arrays(uniform(rng, shape, np.float32))
    w = arrays(uniform(rng, shape[-1:], np.float32))
    s = arrays.f64(x) + arrays.f64(residual)
    want_residual = rounder(arrays)(s)
    if fn == "gemma_add_rms_norm_":  # the stored (rounded) sum is normalised, times 1 + w
        want_x = ref_rms_norm(want_residual, arrays.f64(w), EPS, one_plus=True)
    else:  # the f32 sum, before rounding
        want_x = ref_rms_norm(s, arrays.f64(w), EPS)
    assert getattr(mtile, fn)(x, residual, w, EPS) is None
    close(arrays, residual, want_residual, f"{fn}: residual")
    close(arrays, x, want_x, f"{fn}: x")


@pytest.mark.parametrize("shape", [(3, 1000), (5, 333)])
def test_add_rms_norm_quant_fp8(arrays, rng, shape):
    if arrays.kind == "torch" and not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this torch has no float8_e4m3fn")
    x, residual = arrays(uniform(rng, shape, np.float32)), arrays(uniform(rng, shape, np.float32))
    w = arrays(uniform(rng, shape[-1:], np.float32))
    want_residual = rounder(arrays)(arrays.f64(x) + arrays.f64(residual))
    y = ref_rms_norm(want_residual, arrays.f64(w), EPS)
    want_scale = np.maximum(np.abs(y).max(axis=-1) / 448, 1 / (448 * 512))
    out = (arrays.poisoned(shape, "f8"), arrays.poisoned(shape[:-1], "f32"))
    q, scale = mtile.add_rms_norm_quant_fp8(x, residual, w, EPS, out=out)
    assert q is out[0] and scale is out[1]
    close(arrays, residual, want_residual, "residual")
    assert_close(arrays.f64(scale), want_scale, "float32" if arrays.name == "float32" else "float16", "scale")
    # y / scale rounded to the e4m3 grid; a quotient within f32 rounding of a rounding boundary may go
    # either way, one step, on rare elements (the C++ spec's rule).
    got, want = e4m3_value(arrays.bits(q)), e4m3_round(y / arrays.f64(scale)[..., None])
    assert np.isfinite(got).all()
    assert (np.abs(got - want) <= e4m3_step(want)).all()
    assert np.mean(got == want) > 0.99 and np.linalg.norm(got - want) <= 1e-2 * np.linalg.norm(want)


# ---- per-head: rms_norm_per_head, rope, rope_interleaved, rms_norm_rope ----------------------------


def rotary_inputs(arrays, rng, shape, max_pos=40):
    tokens = shape[:-2]
    x = arrays(uniform(rng, shape, np.float32))
    positions = rng.integers(-3, max_pos + 5, size=tokens).astype(np.int32)  # some outside: clamped
    head_dim = shape[-1]
    freq = 10000.0 ** (-np.arange(head_dim // 2) / (head_dim // 2))
    angles = np.arange(max_pos)[:, None] * freq
    cos_sin = np.concatenate([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    return x, positions, cos_sin


HEAD_SHAPES = [(3, 5, 80), (2, 3, 3, 128), (5, 1, 6)]  # [..., heads, head_dim]; tokens 3, 6, 5


@pytest.mark.parametrize("shape", HEAD_SHAPES)
def test_rms_norm_per_head(arrays, rng, shape):
    x, w = arrays(uniform(rng, shape, np.float32)), arrays(uniform(rng, shape[-1:], np.float32))
    out = arrays.poisoned(shape)
    assert mtile.rms_norm_per_head(x, w, EPS, out=out) is out
    close(arrays, out, ref_rms_norm(arrays.f64(x), arrays.f64(w), EPS), "rms_norm_per_head")


@pytest.mark.parametrize("shape", HEAD_SHAPES)
@pytest.mark.parametrize("fn", ["rope", "rope_interleaved", "rms_norm_rope"])
def test_rotary(arrays, rng, fn, shape):
    x, positions, cos_sin = rotary_inputs(arrays, rng, shape)
    x64 = arrays.f64(x)
    args = (x, arrays.keep(positions), arrays.keep(cos_sin))
    if fn == "rms_norm_rope":
        w = arrays(uniform(rng, shape[-1:], np.float32))
        x64 = ref_rms_norm(x64, arrays.f64(w), EPS)
        args = (x, w) + args[1:] + (EPS,)
    want = ref_rope(x64, positions, cos_sin.astype(np.float64), interleaved=fn == "rope_interleaved")
    out = arrays.poisoned(shape)
    assert getattr(mtile, fn)(*args, out=out) is out
    close(arrays, out, want, fn)
    close(arrays, getattr(mtile, fn)(*args), want, f"{fn}, allocated out")


# ---- rows: softmax_masked, logsumexp, silu_mul, argmax, top_k --------------------------------------


@pytest.mark.parametrize("shape", SHAPES + [(3, 1)])
def test_softmax_masked_and_logsumexp(arrays, rng, shape):
    x = arrays(uniform(rng, shape, np.float32, -4, 4))
    x64 = arrays.f64(x)
    m = x64.max(axis=-1, keepdims=True)
    e = np.exp(x64 - m)
    out = arrays.poisoned(shape)
    mtile.softmax_masked(x, out=out)
    close(arrays, out, e / e.sum(axis=-1, keepdims=True), "softmax_masked")
    lse = arrays.poisoned(shape[:-1], "f32")
    assert mtile.logsumexp(x, out=lse) is lse
    close(arrays, lse, (m + np.log(e.sum(axis=-1, keepdims=True)))[..., 0], "logsumexp")
    got = mtile.logsumexp(x)
    assert tuple(got.shape) == shape[:-1] and arrays.f64(got).dtype == np.float64
    assert str(got.dtype).endswith("float32")


@pytest.mark.parametrize("shape", [(3, 2000), (5, 2 * 333), (2, 3, 2)])
def test_silu_mul(arrays, rng, shape):
    x = arrays(uniform(rng, shape, np.float32, -2, 2))
    x64 = arrays.f64(x)
    n = shape[-1] // 2
    gate, up = x64[..., :n], x64[..., n:]
    out = arrays.poisoned((*shape[:-1], n))
    assert mtile.silu_mul(x, out=out) is out
    close(arrays, out, gate / (1 + np.exp(-gate)) * up, "silu_mul")


@pytest.mark.parametrize("shape", SHAPES + [(3, 1)])
def test_argmax_and_top_k(arrays, rng, shape):
    x = arrays(uniform(rng, shape, np.float32))
    x64 = arrays.f64(x)
    rows = x64.reshape(-1, shape[-1])
    first_max = np.array([np.flatnonzero(r == r.max())[0] for r in rows]).reshape(shape[:-1])  # ties: lowest
    out = arrays.poisoned(shape[:-1], "u32")
    assert mtile.argmax(x, out=out) is out
    assert (arrays.f64(out) == first_max).all()
    assert (arrays.f64(mtile.argmax(x)) == first_max).all()
    k = min(8, shape[-1])
    want_values, want_indices = ref_top_k(x64, k)
    out = (arrays.poisoned((*shape[:-1], k)), arrays.poisoned((*shape[:-1], k), "u32"))
    values, indices = mtile.top_k(x, k, out=out)
    assert values is out[0] and indices is out[1]
    assert (arrays.f64(values) == want_values).all() and (arrays.f64(indices) == want_indices).all()
    values, indices = mtile.top_k(x, k)
    assert (arrays.f64(values) == want_values).all() and (arrays.f64(indices) == want_indices).all()


def test_argmax_and_top_k_skip_nan():
    x = np.array([[np.nan, 1.0, 3.0, 3.0, -2.0]], np.float32)
    assert mtile.argmax(x).tolist() == [2]
    values, indices = mtile.top_k(x, 5)
    assert values[0, :4].tolist() == [3.0, 3.0, 1.0, -2.0] and indices[0, :4].tolist() == [2, 3, 1, 4]
    assert values[0, 4] == -np.inf and indices[0, 4] == 0xFFFFFFFF  # fewer than k numbers


# ---- elementwise: gelu, gelu_tanh, add, mul; histogram ----------------------------------------------

_erf = np.vectorize(math.erf)


@pytest.mark.parametrize("shape", [(1,), (1001,), (3, 7, 333)])
def test_unary_and_binary(arrays, rng, shape):
    x, b = arrays(uniform(rng, shape, np.float32, -4, 4)), arrays(uniform(rng, shape, np.float32))
    x64, b64 = arrays.f64(x), arrays.f64(b)
    wants = {
        "gelu": (lambda: mtile.gelu(x, out=out), 0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))),
        "gelu_tanh": (lambda: mtile.gelu_tanh(x, out=out),
                      0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))),
        "add": (lambda: mtile.add(x, b, out=out), x64 + b64),
        "mul": (lambda: mtile.mul(x, b, out=out), x64 * b64),
    }
    for fn, (call, want) in wants.items():
        out = arrays.poisoned(shape)
        assert call() is out
        close(arrays, out, want, fn)
    close(arrays, mtile.add(x, b), x64 + b64, "add, allocated out")


@pytest.mark.parametrize("n, bins", [(1, 1), (1001, 7), (3 * 7 * 333, 256)])
def test_histogram(arrays, rng, n, bins):
    x = arrays(uniform(rng, (n,), np.float32, -1.2, 1.2))  # some outside [lo, hi]: not counted
    want = ref_histogram(arrays.f64(x), bins, -1.0, 1.0)
    got = mtile.histogram(x, bins, -1.0, 1.0)
    assert tuple(got.shape) == (bins,) and str(got.dtype).endswith("uint32")
    assert (arrays.f64(got) == want).all()
    assert mtile.histogram(x, bins, -1.0, 1.0, counts=got) is got  # given counts are added to
    assert (arrays.f64(got) == 2 * want).all()


def test_histogram_edges():
    x = np.array([-1.0, 1.0, 0.0, 0.5, 2.0, np.nan, -1.5], np.float32).reshape(7, 1)  # any shape: every element
    assert mtile.histogram(x, 4, -1.0, 1.0).tolist() == [1, 0, 1, 2]  # hi in the last bin; outside and NaN skipped


# ---- decoding: gemv, attention_decode ----------------------------------------------------------------


def ref_attention_decode(q, k, v, scale):
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [batch, heads, seq, d]
    s = scale * np.einsum("bhd,bhsd->bhs", q, k)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.einsum("bhs,bhsd->bhd", p / p.sum(axis=-1, keepdims=True), v)


@pytest.mark.parametrize("m, n, k", [(1, 33, 264), (3, 17, 8), (8, 129, 1024)])
def test_gemv(arrays, rng, m, n, k):
    x, w = arrays(uniform(rng, (m, k), np.float32)), arrays(uniform(rng, (n, k), np.float32, -0.1, 0.1))
    want = arrays.f64(x) @ arrays.f64(w).T
    out = arrays.poisoned((m, n))
    assert mtile.gemv(x, w, out=out) is out
    close(arrays, out, want, "gemv")
    close(arrays, mtile.gemv(x[0], w), want[0], "gemv of one row (x [k]), allocated out")


@pytest.mark.parametrize("m, n, k", [(1, 8, 8), (17, 33, 40), (130, 70, 64)])
def test_gemm(arrays, rng, m, n, k):
    a, w = arrays(uniform(rng, (m, k), np.float32)), arrays(uniform(rng, (n, k), np.float32, -0.5, 0.5))
    if arrays.name == "float32":  # tensor cores multiply 16-bit floats: the f32 call is refused
        refused(r"kernel gemm has no f32 variant \(it has bf16, f16\)", mtile.gemm, a, w)
        return
    a64, w64 = arrays.f64(a), arrays.f64(w)
    want = a64 @ w64.T
    out = arrays.poisoned((m, n))
    assert mtile.gemm(a, w, out=out) is out
    close(arrays, out, want, "gemm")
    bias = arrays(uniform(rng, (n,), np.float32))
    silu = (want + arrays.f64(bias)) / (1 + np.exp(-(want + arrays.f64(bias))))
    close(arrays, mtile.gemm(a, w, bias, act="silu"), silu, "gemm + bias, silu")
    gelu = 0.5 * want * (1 + np.vectorize(math.erf)(want / math.sqrt(2)))
    close(arrays, mtile.gemm(a, w, act="gelu"), gelu, "gemm, gelu")
    residual = arrays(uniform(rng, (m, n), np.float32))
    close(arrays, mtile.gemm(a, w, residual=residual), want + arrays.f64(residual), "gemm + residual")
    refused(r"mtile.gemm: act='relu'", mtile.gemm, a, w, act="relu")
    refused(r"mtile.gemm: w has shape", mtile.gemm, a, arrays(uniform(rng, (n, k + 8), np.float32)))
    refused(r"k % 8 == 0", mtile.gemm, arrays(uniform(rng, (m, 12), np.float32)),
            arrays(uniform(rng, (n, 12), np.float32)))


@pytest.mark.parametrize("batch, heads, kv_heads, seq, d", [(1, 4, 1, 1, 64), (2, 8, 2, 300, 128), (3, 2, 2, 77, 64)])
def test_attention_decode(arrays, rng, batch, heads, kv_heads, seq, d):
    q = arrays(uniform(rng, (batch, heads, d), np.float32))
    k, v = (arrays(uniform(rng, (batch, kv_heads, seq, d), np.float32)) for _ in range(2))
    q64, k64, v64 = arrays.f64(q), arrays.f64(k), arrays.f64(v)
    out = arrays.poisoned((batch, heads, d))
    assert mtile.attention_decode(q, k, v, 0.3, out=out) is out
    close(arrays, out, ref_attention_decode(q64, k64, v64, 0.3), "attention_decode")
    # Again, scale 1 / sqrt(d): the counters the first call left at zero serve the second.
    close(arrays, mtile.attention_decode(q, k, v), ref_attention_decode(q64, k64, v64, 1 / math.sqrt(d)),
          "attention_decode, default scale")


def test_attention_decode_takes_its_counters():
    rng = np.random.default_rng(5)
    q = uniform(rng, (1, 8, 64), np.float32)
    k, v = uniform(rng, (1, 2, 1000, 64), np.float32), uniform(rng, (1, 2, 1000, 64), np.float32)
    counters = np.zeros(2, np.uint32)
    out = mtile.attention_decode(q, k, v, counters=counters)
    assert_close(out, ref_attention_decode(q, k, v, 1 / 8), "float32", "attention_decode")
    assert (counters == 0).all()


def ref_attention_prefill(q, k, v, scale):
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [batch, heads, seq, d]
    s = scale * np.einsum("bhid,bhjd->bhij", q, k)
    seq = q.shape[2]
    s = np.where(np.tril(np.ones((seq, seq), bool)), s, -np.inf)  # key j <= query i
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.einsum("bhij,bhjd->bhid", p / p.sum(axis=-1, keepdims=True), v)


@pytest.mark.parametrize("batch, heads, kv_heads, seq, d", [(1, 2, 1, 1, 64), (2, 4, 2, 77, 128), (1, 2, 2, 130, 32)])
def test_attention_prefill(arrays, rng, batch, heads, kv_heads, seq, d):
    q = arrays(uniform(rng, (batch, heads, seq, d), np.float32))
    k, v = (arrays(uniform(rng, (batch, kv_heads, seq, d), np.float32)) for _ in range(2))
    if arrays.name == "float32":  # tensor cores multiply 16-bit floats: the f32 call is refused
        refused(r"kernel attention_prefill has no f32 variant \(it has bf16, f16\)", mtile.attention_prefill, q, k, v)
        return
    q64, k64, v64 = arrays.f64(q), arrays.f64(k), arrays.f64(v)
    out = arrays.poisoned((batch, heads, seq, d))
    assert mtile.attention_prefill(q, k, v, 0.3, out=out) is out
    close(arrays, out, ref_attention_prefill(q64, k64, v64, 0.3), "attention_prefill")
    close(arrays, mtile.attention_prefill(q, k, v), ref_attention_prefill(q64, k64, v64, 1 / math.sqrt(d)),
          "attention_prefill, default scale")
    short = arrays(uniform(rng, (batch, kv_heads, seq + 1, d), np.float32))
    refused(r"mtile.attention_prefill: k has shape", mtile.attention_prefill, q, short, short)
    q8, k8 = arrays(uniform(rng, (batch, heads, seq, d - 8), np.float32)), arrays(uniform(rng, (batch, kv_heads, seq, d - 8), np.float32))
    refused(r"d % 16 == 0", mtile.attention_prefill, q8, k8, k8)


# ---- refusals ----------------------------------------------------------------------------------------


def refused(match, fn, *args, **kwargs):
    with pytest.raises(mtile.UserError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


def test_norm_refusals(rng):
    x, w = uniform(rng, (3, 100), np.float32), uniform(rng, (100,), np.float32)
    out = poisoned((3, 100), np.float32)
    refused(r"mtile.rms_norm: w has shape \(99,\); it must be \(100,\), x's last dim", mtile.rms_norm, x, w[:99].copy())
    refused(r"kernel gemma_rms_norm: array 'x' is float64", mtile.gemma_rms_norm, x.astype(np.float64), w)
    refused(r"mtile.layer_norm: b has shape \(3,\); it must be \(100,\), x's last dim", mtile.layer_norm, x, w,
            w[:3].copy(), out=out)
    refused(r"kernel layer_norm_no_bias: the f16 variant takes", mtile.layer_norm_no_bias, x.astype(np.float16), w)
    refused(r"mtile.rms_norm: out has shape \(100, 3\)", mtile.rms_norm, x, w, out=out.reshape(100, 3))
    assert np.isnan(out).all()  # nothing written
    residual = x.copy()
    refused(r"mtile.gemma_add_rms_norm_: residual has shape \(3, 99\); it must be x's",
            mtile.gemma_add_rms_norm_, x, residual[:, :99].copy(), w)
    refused(r"array 'residual' is float64", mtile.add_rms_norm_unrounded_, x, residual.astype(np.float64), w)
    refused(r"out is float32; numpy has no fp8, so it must be uint8", mtile.add_rms_norm_quant_fp8, x, residual, w,
            out=(out, np.zeros(3, np.float32)))
    refused(r"out is a ndarray; it must be a pair \(out, scale\)", mtile.add_rms_norm_quant_fp8, x, residual, w,
            out=out)
    refused(r"scale has shape \(4,\); it must be \(3,\), x's rows", mtile.add_rms_norm_quant_fp8, x, residual, w,
            out=(np.zeros((3, 100), np.uint8), np.zeros(4, np.float32)))
    assert (residual == x).all()  # nothing written


def test_per_head_refusals(rng):
    x, positions, cos_sin = rotary_inputs(Arrays("numpy", np.float32), rng, (3, 4, 64))
    refused(r"mtile.rms_norm_per_head: x has shape \(64,\); it needs at least 2 dims", mtile.rms_norm_per_head,
            x[0, 0].copy(), np.ones(64, np.float32))
    refused(r"w has shape \(32,\); it must be \(64,\)", mtile.rms_norm_per_head, x, np.ones(32, np.float32))
    refused(r"kernel rope: the f32 variant takes .*positions i32.*; given x f32, positions i64", mtile.rope, x,
            positions.astype(np.int64), cos_sin)
    refused(r"mtile.rope_interleaved: positions has shape \(2,\); it must be \(3,\)", mtile.rope_interleaved, x,
            positions[:2].copy(), cos_sin)
    refused(r"mtile.rms_norm_rope: cos_sin has shape \(40, 32\); it must be \(max_pos, 64\)", mtile.rms_norm_rope, x,
            np.ones(64, np.float32), positions, cos_sin[:, :32].copy())
    refused(r"kernel rope: .*cos_sin f32.*given x f16, positions i32, cos_sin f16", mtile.rope, x.astype(np.float16),
            positions, cos_sin.astype(np.float16))
    refused(r"head_dim % 2 == 0 \(head_dim = 5\)", mtile.rope, x[..., :5].copy(), positions, cos_sin[:, :5].copy())


def test_row_refusals(rng):
    x = uniform(rng, (3, 100), np.float32)
    refused(r"mtile.logsumexp: out has shape \(3, 100\); it must be \(3,\), x's rows", mtile.logsumexp, x,
            out=poisoned((3, 100), np.float32))
    refused(r"kernel logsumexp: the f32 variant takes .*out f32.*given x f32, out f16", mtile.logsumexp, x,
            out=poisoned((3,), np.float16))
    refused(r"mtile.silu_mul: x has shape \(3, 99\); its last dim must be even", mtile.silu_mul, x[:, :99].copy())
    refused(r"mtile.argmax: out has shape \(4,\)", mtile.argmax, x, out=np.zeros(4, np.uint32))
    refused(r"kernel argmax: .*given x f32, out i32", mtile.argmax, x, out=np.zeros(3, np.int32))
    refused(r"k <= 64 \(k = 65\)", mtile.top_k, x, 65)
    refused(r"k <= n \(k = 8, n = 4\)", mtile.top_k, x[:, :4].copy(), 8)
    refused(r"out is a tuple; it must be a pair \(values, indices\)", mtile.top_k, x, 2, out=(x,))
    refused(r"mtile.softmax_masked: x is a scalar", mtile.softmax_masked, np.ones((), np.float32))


def test_elementwise_refusals(rng):
    a = uniform(rng, (5, 7), np.float32)
    refused(r"mtile.add: b has shape \(7, 5\); it must be a's, \(5, 7\)", mtile.add, a, a.reshape(7, 5))
    refused(r"kernel mul has no i32 variant", mtile.mul, a.astype(np.int32), a.astype(np.int32))
    refused(r"mtile.gelu: out has shape \(35,\); it must be \(5, 7\), x's", mtile.gelu, a, out=a.ravel())
    refused(r"kernel gelu_tanh: array 'x' is float64", mtile.gelu_tanh, a.astype(np.float64))
    refused(r"mtile.gelu: x is a list", mtile.gelu, [1.0])
    refused(r"mtile.histogram: bins = 0; it must be at least 1", mtile.histogram, a, 0, -1.0, 1.0)
    refused(r"mtile.histogram: counts has shape \(3,\); it must be \(4,\)", mtile.histogram, a, 4, -1.0, 1.0,
            counts=np.zeros(3, np.uint32))
    refused(r"kernel histogram: .*given x f32, counts i64", mtile.histogram, a, 4, -1.0, 1.0,
            counts=np.zeros(4, np.int64))


def test_decode_refusals(rng):
    x, w = uniform(rng, (2, 64), np.float32), uniform(rng, (16, 64), np.float32)
    refused(r"mtile.gemv: w has shape \(16, 63\); it must be \(n, 64\)", mtile.gemv, x, w[:, :63].copy())
    refused(r"kernel gemv: contract violated: .*m <= 8 \(m = 9\)", mtile.gemv, np.ones((9, 64), np.float32), w)
    refused(r"kernel gemv: contract violated: .*k % 8 == 0 \(k = 12\)", mtile.gemv, x[:, :12].copy(),
            w[:, :12].copy())
    q, k = uniform(rng, (1, 6, 64), np.float32), uniform(rng, (1, 4, 10, 64), np.float32)
    refused(r"heads % kv_heads == 0 \(heads = 6, kv_heads = 4\)", mtile.attention_decode, q, k, k)
    refused(r"mtile.attention_decode: k has shape \(1, 4, 10, 32\); it must be \(batch, kv_heads, seq, d\)",
            mtile.attention_decode, q, k[..., :32].copy(), k)
    refused(r"mtile.attention_decode: v has shape \(1, 4, 9, 64\)", mtile.attention_decode, q, k, k[:, :, :9].copy())


@needs_torch
def test_torch_refusals():
    x = torch.ones(4, 6, dtype=torch.float16)
    refused(r"tensor 'x' is not contiguous", mtile.rms_norm, x.t().contiguous().t(), torch.ones(6, dtype=torch.float16))
    refused(r"'w' is a ndarray; the other tensors are torch tensors", mtile.layer_norm_no_bias, x,
            np.ones(6, np.float16))
    refused(r"tensor 'x' is torch.float64", mtile.gelu, x.double())


@needs_cuda
def test_mixed_devices_are_refused():
    x = torch.ones(4, 256, device="cuda")
    refused(r"tensors are on different devices: 'x' on cuda:0, 'w' on cpu", mtile.rms_norm, x, torch.ones(256))


# ---- the package: exports, custom ops ------------------------------------------------------------------


def test_exports():
    for fn in NEW:
        assert fn in mtile.__all__ and getattr(mtile, fn).__doc__
        assert fn.rstrip("_") in [k.name for k in mtile.kernels()]
    if mtile.torch_ops_registered:
        for fn in NEW:
            assert hasattr(torch.ops.mtile, fn.rstrip("_")), fn


def cuda_rand(*shape, dtype=torch.bfloat16 if torch else None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2 - 1).to(dtype).cuda()


@needs_cuda
@needs_ops
def test_custom_ops_pass_opcheck():
    x, residual, w = cuda_rand(8, 1000), cuda_rand(8, 1000, seed=1), cuda_rand(1000, seed=2)
    heads = cuda_rand(4, 8, 128, seed=3)
    positions = torch.arange(4, dtype=torch.int32, device="cuda")
    cos_sin = cuda_rand(16, 128, dtype=torch.float32, seed=4)
    cases = [
        ("rms_norm", (x, w, EPS)), ("layer_norm", (x, w, w, EPS)),
        ("gemma_add_rms_norm", (x.clone(), residual.clone(), w, EPS)),
        ("add_rms_norm_quant_fp8", (x, residual.clone(), w, EPS)),
        ("rms_norm_per_head", (heads, w[:128].contiguous(), EPS)), ("rope", (heads, positions, cos_sin)),
        ("rms_norm_rope", (heads, w[:128].contiguous(), positions, cos_sin, EPS)), ("logsumexp", (x,)),
        ("silu_mul", (x,)), ("argmax", (x,)), ("top_k", (x, 5)), ("gelu", (x,)), ("mul", (x, residual)),
        ("histogram", (x, torch.zeros(16, dtype=torch.int32, device="cuda").view(torch.uint32), -1.0, 1.0)),
    ]
    for name, args in cases:
        torch.library.opcheck(getattr(torch.ops.mtile, name).default, args,
                              test_utils=("test_schema", "test_faketensor"))


@needs_cuda
@needs_ops
def test_torch_compile_holds_the_new_ops():
    x, residual, w = cuda_rand(16, 1000), cuda_rand(16, 1000, seed=1), cuda_rand(1000, seed=2)
    x64, r64, w64 = (t.double().cpu().numpy() for t in (x, residual, w))

    def step(x, residual, w):
        h = mtile.layer_norm_no_bias(x, w, EPS)
        values, indices = mtile.top_k(h, 4)
        mtile.gemma_add_rms_norm_(x, residual, w, EPS)
        return mtile.silu_mul(h) * 2, values, indices, x * 1

    graphs = []

    def keep_graph(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(step, backend=keep_graph, fullgraph=True)
    got, values, indices, new_x = compiled(x.clone(), residual.clone(), w)
    for op in ("mtile.layer_norm_no_bias", "mtile.top_k", "mtile.gemma_add_rms_norm", "mtile.silu_mul"):
        assert any(op in g for g in graphs), (op, graphs)
    h = mtile.layer_norm_no_bias(x, w, EPS)  # eager, the reference of the compiled calls
    assert_close(got.double().cpu().numpy(), 2 * mtile.silu_mul(h).double().cpu().numpy(), "bfloat16", "silu_mul")
    assert torch.equal(values, mtile.top_k(h, 4)[0])
    s = torch.from_numpy(x64 + r64).to(torch.bfloat16).double().numpy()
    assert_close(new_x.double().cpu().numpy(), ref_rms_norm(s, w64, EPS, one_plus=True), "bfloat16", "in place")
    got = torch.compile(lambda x, w: mtile.rms_norm(x, w, EPS) + 1, fullgraph=True)(x, w)  # inductor
    assert_close(got.double().cpu().numpy(), ref_rms_norm(x64, w64, EPS) + 1, "bfloat16", "inductor")


@needs_cuda
def test_cuda_graph_capture_of_scalar_eps():
    x, w = cuda_rand(32, 4096), cuda_rand(4096, seed=1)
    out = torch.empty_like(x)
    mtile.rms_norm(x, w, EPS, out=out)  # compiles before the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        mtile.rms_norm(x, w, EPS, out=out)
    for seed in range(2):
        x.copy_(cuda_rand(32, 4096, seed=10 + seed))
        graph.replay()
        torch.cuda.synchronize()
        want = ref_rms_norm(x.double().cpu().numpy(), w.double().cpu().numpy(), EPS)
        assert_close(out.double().cpu().numpy(), want, "bfloat16", f"replay {seed}")
