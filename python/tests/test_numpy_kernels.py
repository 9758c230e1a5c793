"""Every library kernel on numpy arrays (the CPU engine) against its float64 reference."""
import mtile
import numpy as np
import pytest
from references import add_rms_norm, assert_close, poisoned, rms_inv_scalar, rms_norm, softmax, uniform

FLOATS = [np.float32, np.float16]
EPS = 1e-5


def name(dtype):
    return np.dtype(dtype).name


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "fn, shape",
    [
        ("rms_norm_residual", (3, 100)),
        ("rms_norm_residual", (2, 3, 4096)),  # rows = 2 * 3
        ("rms_norm_residual", (2, 8203)),
        ("ffai_rms_norm_residual", (3, 512)),
    ],
)
def test_norm_with_residual(rng, fn, shape, dtype):
    x, residual = uniform(rng, shape, dtype), uniform(rng, shape, dtype)
    w = uniform(rng, shape[-1:], dtype)
    out = poisoned(shape, dtype)
    got = getattr(mtile, fn)(x, residual, w, EPS, out=out)
    assert got is out
    assert_close(out, rms_norm(x, w, EPS, residual), name(dtype), fn)
    assert_close(getattr(mtile, fn)(x, residual, w, EPS), out, name(dtype), f"{fn}, allocated out")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("fn, shape", [("mt_rms_norm", (2, 256)), ("mt_rms_norm_small", (5, 64)),
                                       ("mt_rms_norm_small", (3, 48)), ("mt_rms_norm_wide", (2, 8203))])
def test_norm(rng, fn, shape, dtype):
    x, w = uniform(rng, shape, dtype), uniform(rng, shape[-1:], dtype)
    out = poisoned(shape, dtype)
    getattr(mtile, fn)(x, w, EPS, out=out)
    assert_close(out, rms_norm(x, w, EPS), name(dtype), fn)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 7168), (2, 100)])
def test_add_rms_norm_in_place(rng, shape, dtype):
    x, residual, w = uniform(rng, shape, dtype), uniform(rng, shape, dtype), uniform(rng, shape[-1:], dtype)
    want_x, want_residual = add_rms_norm(x, residual, w, EPS, lambda v: v.astype(dtype).astype(np.float64))
    assert mtile.add_rms_norm_(x, residual, w, EPS) is None
    assert_close(residual, want_residual, name(dtype), "residual")
    assert_close(x, want_x, name(dtype), "x")


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax(rng, dtype):
    x = uniform(rng, (4, 1000), dtype, -4, 4)
    out = poisoned(x.shape, dtype)
    mtile.softmax(x, out=out)
    assert_close(out, softmax(x), name(dtype), "softmax")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1,), (1000,), (3, 7)])
def test_vector_add(rng, shape, dtype):
    a, b = uniform(rng, shape, dtype), uniform(rng, shape, dtype)
    out = poisoned(shape, dtype)
    mtile.vector_add(a, b, out=out)
    assert_close(out, a.astype(np.float64) + b, name(dtype), "vector_add")


def test_rms_inv_scalar(rng):
    partial = uniform(rng, (3, 32), np.float32, 0.01, 4.0)
    out = poisoned((3,), np.float32)
    mtile.mt_rms_inv_scalar(partial, 128, EPS, out=out)
    assert_close(out, rms_inv_scalar(partial, 128, EPS), "float32", "mt_rms_inv_scalar")


def test_eps_is_the_one_given(rng):
    # Rows of tiny values: eps dominates mean(x^2), so a wrong or stale eps buffer shows.
    x = uniform(rng, (2, 64), np.float32) * 1e-3
    w = np.ones(64, np.float32)
    for eps in (1e-6, 1e-2, 1e-6):
        assert_close(mtile.mt_rms_norm_wide(x, w, eps), rms_norm(x, w, eps), "float32", f"eps {eps}")


def test_launch_any_kernel_with_derived_and_explicit_dims(rng):
    x, residual, w = (uniform(rng, s, np.float32) for s in [(4, 300), (4, 300), (300,)])
    eps = np.array([EPS], np.float32)
    out = poisoned(x.shape, np.float32)
    mtile.launch("rms_norm_residual", x, residual, w, out, eps)  # rows, n from x
    assert_close(out, rms_norm(x, w, EPS, residual), "float32", "derived dims")
    out2 = poisoned(x.shape, np.float32)
    mtile.launch("rms_norm_residual", x.ravel(), residual, w, out2, eps, rows=4, n=300, dtype="f32")
    assert_close(out2, out, "float32", "explicit dims")
    partial = uniform(rng, (2, 32), np.float32, 0.01, 4.0)
    inv = poisoned((2,), np.float32)
    mtile.launch("mt_rms_inv_scalar", partial, eps, inv, rows=2, threads=32, n=100)
    assert_close(inv, rms_inv_scalar(partial, 100, EPS), "float32", "mt_rms_inv_scalar")


class DLPackOnly:
    """An array that only speaks DLPack, as a third-party array library would."""

    def __init__(self, a):
        self._a = a
        self.shape = a.shape

    def __dlpack__(self, stream=None):
        return self._a.__dlpack__()

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_launch_through_dlpack(rng):
    a, b = uniform(rng, (2, 500), np.float16), uniform(rng, (2, 500), np.float16)
    c = poisoned(a.shape, np.float16)
    mtile.launch("vector_add", DLPackOnly(a), DLPackOnly(b), DLPackOnly(c))
    assert_close(c, a.astype(np.float64) + b, "float16", "vector_add through DLPack")
    # A strided view reaches the C ABI as a DLTensor with strides: refused there, naming it.
    with pytest.raises(mtile.UserError, match=r"tensor 'b' is not contiguous"):
        mtile.launch("vector_add", DLPackOnly(a[:, :250].copy()), DLPackOnly(b[:, ::2]), DLPackOnly(c[:, :250].copy()))


def test_kernel_descriptions():
    names = [k.name for k in mtile.kernels()]
    for n in ["mt_rms_inv_scalar", "mt_rms_norm", "ffai_rms_norm_residual", "mt_rms_norm_small",
              "mt_rms_norm_wide", "rms_norm_residual", "add_rms_norm", "softmax", "vector_add"]:
        assert n in names
    k = mtile.kernel("ffai_rms_norm_residual")
    assert k.dims == ("rows", "n")
    assert k.dtypes == ("f32", "f16", "bf16")
    assert "n % 128 == 0" in k.preconditions
    assert [p.name for p in k.tensors] == ["x", "residual", "w", "out", "eps_buf"]
    assert k.param_dtypes("bf16") == {"x": "bf16", "residual": "bf16", "w": "bf16", "out": "bf16", "eps_buf": "f32"}
    assert [p.role for p in mtile.kernel("add_rms_norm").tensors] == ["inout", "inout", "in", "in"]
    assert mtile.__version__ and mtile.torch_ops_registered in (True, False)


def test_collective_kernels_are_refused_by_name(rng):
    # Symmetric memory (every rank's slice at one address) is not something a DLPack tensor is.
    x, res, w = uniform(rng, (2, 4, 64), np.float32), uniform(rng, (4, 64), np.float32), uniform(rng, (64,), np.float32)
    flags, out, eps = np.zeros(2 * 2 * 4, np.uint32), poisoned((4, 64), np.float32), np.full(1, 1e-6, np.float32)
    with pytest.raises(mtile.UserError, match=r"allreduce_add_rms_norm is a collective kernel"):
        mtile.launch("allreduce_add_rms_norm", x, flags, res, w, out, eps, ranks=2, rows=4, n=64, rank=0)
