"""float64 references of the library's kernels, on numpy arrays, and the tolerances of the C++ specs."""
import numpy as np

# (relative L2 error, largest absolute error) by dtype name, as kernels/spec_helpers.hpp gives them.
TOLERANCE = {"float32": (1e-5, 1e-4), "float16": (5e-4, 4e-3), "bfloat16": (4e-3, 3e-2)}


def rms_norm(x, w, eps, residual=None):
    x = np.asarray(x, np.float64)
    inv = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    out = x * inv * np.asarray(w, np.float64)
    return out if residual is None else np.asarray(residual, np.float64) + out


def add_rms_norm(x, residual, w, eps, round_to):
    """(new x, new residual): the sum is rounded to the dtype as the kernel stores it (round_to)."""
    s = round_to(np.asarray(x, np.float64) + np.asarray(residual, np.float64))
    return rms_norm(s, w, eps), s


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rms_inv_scalar(partial, n, eps):
    return 1.0 / np.sqrt(np.asarray(partial, np.float64).sum(axis=-1) / n + eps)


def assert_close(got, ref, dtype_name, what=""):
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert np.isfinite(got).all(), f"{what}: non-finite outputs (some never written?)"
    rel_l2, max_abs = TOLERANCE[dtype_name]
    err = np.abs(got - ref).max()
    rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
    assert err <= max_abs and rel <= rel_l2, f"{what}: max |err| {err:.3g} (<= {max_abs}), rel L2 {rel:.3g} (<= {rel_l2})"


def uniform(rng, shape, dtype, lo=-1.0, hi=1.0):
    """Random values, never zero: a kernel that writes nothing, or zeros, can't pass."""
    v = rng.uniform(lo, hi, size=shape)
    v = np.where(np.abs(v) < 1e-3, 0.5, v)
    return v.astype(dtype)


def poisoned(shape, dtype):
    """An output buffer full of NaN: every element the kernel leaves unwritten fails the check."""
    return np.full(shape, np.nan, dtype=dtype)
