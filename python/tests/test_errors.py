"""Refusals: each is a Python exception (a UserError, also a ValueError) whose message names the
function or kernel, the parameter and what was wrong; nothing is written when a call is refused."""
import mtile
import numpy as np
import pytest
from mtile import _capi
from references import poisoned, uniform


@pytest.fixture
def norm_args(rng):
    x, residual = uniform(rng, (4, 256), np.float32), uniform(rng, (4, 256), np.float32)
    return x, residual, uniform(rng, (256,), np.float32), poisoned((4, 256), np.float32)


def refused(match, fn, *args, **kwargs):
    with pytest.raises(mtile.UserError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


def test_wrong_dtype(norm_args):
    x, residual, w, out = norm_args
    refused(r"kernel rms_norm_residual: array 'x' is float64", mtile.rms_norm_residual, x.astype(np.float64),
            residual, w)
    refused(r"array 'a' is complex64", mtile.vector_add, np.ones(4, np.complex64), np.ones(4, np.complex64))
    refused(r"kernel vector_add has no i8 variant \(it has f32, f16, bf16\)", mtile.vector_add, np.ones(4, np.int8),
            np.ones(4, np.int8))


def test_mixed_dtypes_name_the_variant(norm_args):
    x, residual, w, out = norm_args
    e = refused(r"kernel rms_norm_residual: the f16 variant takes", mtile.rms_norm_residual, x.astype(np.float16),
                residual.astype(np.float16), w)
    assert "w f32" in str(e) and "eps_buf f32" in str(e)


def test_non_contiguous(norm_args):
    x, residual, w, out = norm_args
    refused(r"array 'x' is not C-contiguous", mtile.rms_norm_residual, np.asfortranarray(x), residual, w)
    big = uniform(np.random.default_rng(0), (4, 512), np.float32)
    refused(r"array 'residual' is not C-contiguous", mtile.rms_norm_residual, x, big[:, ::2], w)
    assert np.isnan(out).all()


def test_mismatched_shapes(norm_args):
    x, residual, w, out = norm_args
    refused(r"mtile.rms_norm_residual: residual has shape \(4, 128\); it must be x's, \(4, 256\)",
            mtile.rms_norm_residual, x, residual[:, :128].copy(), w)
    refused(r"w has shape \(255,\); it must be \(256,\)", mtile.rms_norm_residual, x, residual, w[:255].copy())
    refused(r"out has shape \(256, 4\)", mtile.rms_norm_residual, x, residual, w, out=out.reshape(256, 4))
    refused(r"b has shape \(3,\); it must be a's, \(4,\)", mtile.vector_add, x[0, :4].copy(), x[0, :3].copy())
    refused(r"x is a scalar", mtile.softmax, np.ones((), np.float32))


def test_violated_contract_launches_nothing(rng):
    x, residual = uniform(rng, (2, 100), np.float32), uniform(rng, (2, 100), np.float32)
    out = poisoned(x.shape, np.float32)
    e = refused(r"kernel ffai_rms_norm_residual", mtile.ffai_rms_norm_residual, x, residual,
                uniform(rng, (100,), np.float32), out=out)
    assert "n % 128 == 0 (n = 100)" in str(e) and "Nothing was launched" in str(e)
    assert np.isnan(out).all()
    refused(r"n <= 64", mtile.mt_rms_norm_small, uniform(rng, (2, 128), np.float32), uniform(rng, (128,), np.float32))


def test_read_only_output(norm_args):
    x, residual, w, out = norm_args
    out.flags.writeable = False
    refused(r"array 'out' is read-only, and the kernel writes it", mtile.rms_norm_residual, x, residual, w, out=out)
    x.flags.writeable = False  # read-only inputs are fine
    mtile.rms_norm_residual(x, residual, w)


def test_unknown_kernel():
    e = refused(r"unknown kernel 'no_such_kernel'", mtile.launch, "no_such_kernel")
    assert "rms_norm_residual" in str(e)  # it lists the known ones
    refused(r"unknown kernel", mtile.kernel, "nope")


def test_launch_arguments(norm_args):
    x, residual, w, out = norm_args
    eps = np.array([1e-6], np.float32)
    refused(r"kernel rms_norm_residual takes 5 tensors \(x, residual, w, out, eps_buf\), 4 given", mtile.launch,
            "rms_norm_residual", x, residual, w, out)
    refused(r"kernel rms_norm_residual has no dim 'm'", mtile.launch, "rms_norm_residual", x, residual, w, out, eps,
            m=3)
    refused(r"pass its dims as keywords", mtile.launch, "mt_rms_inv_scalar", x, eps, out)
    refused(r"dim n = 4294967296 is not a u32", mtile.launch, "rms_norm_residual", x, residual, w, out, eps,
            n=2**32)
    refused(r"tensor 'x' has 1024 elements; x = rows \* n needs 2048", mtile.launch, "rms_norm_residual", x,
            residual, w, out, eps, rows=8)
    # A library function's dims come from shapes; one past u32 (a 2^32-element row) is refused too.
    refused(r"kernel vector_add: its dims \(n = 4294967296\) must be u32 values", mtile._launch._pack_dims,
            mtile.kernel("vector_add"), (2**32,))
    refused(r"'w' is a list", mtile.launch, "rms_norm_residual", x, residual, [1.0] * 256, out, eps)
    refused(r"mtile.softmax: x is a list; mtile.softmax takes torch tensors and numpy arrays", mtile.softmax,
            [1.0, 2.0])
    refused(r"dtype 'f64' is not one of mtile's", mtile.launch, "vector_add", x, x, out, dtype="f64")
    assert np.isnan(out).all()


def test_host_memory_claimed_to_be_cuda_memory():
    """Without a GPU the CUDA backend can't open; with one the driver does not know the address."""
    a = np.ones(1024, np.float32)
    k = mtile.kernel("vector_add")
    records = k.pack_tensors(*(v for _ in range(3) for v in (a.ctypes.data, a.size, _capi.F32, 0)))
    status = _capi.launch_tensors(k.handle, records, 3, k.pack_dims(a.size), 1, None, 0, _capi.F32, 0)
    assert status == 2
    assert (msg := _capi.last_error().decode()).startswith("kernel vector_add: ")
    assert "its tensors are on cuda:0, which mtile can't use" in msg or "is not memory the CUDA driver knows" in msg
