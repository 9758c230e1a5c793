"""A kernel library built against the installed package (examples/kernel_library), loaded with
mtile.load_library and launched with mtile.launch."""
import os
import shutil
import subprocess

import mtile
import numpy as np
import pytest
from references import assert_close, uniform

SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "kernel_library", "axpy.cpp")


@pytest.fixture(scope="module")
def axpy_library(tmp_path_factory):
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        pytest.skip("no C++ compiler to build the kernel library with")
    out = tmp_path_factory.mktemp("kernel_library") / "libaxpy.so"
    cmd = [cxx, "-std=c++20", "-shared", "-fPIC", "-O0", SOURCE, "-o", str(out), "-I", mtile.include_dir(),
           "-L", mtile.library_dir(), "-lmtile_c"]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stderr}"
    return str(out)


def test_load_and_launch(axpy_library, rng):
    assert mtile.load_library(axpy_library) == ["example_axpy"]
    assert mtile.load_library(axpy_library) == []  # loaded once
    k = mtile.kernel("example_axpy")
    assert [(p.name, p.role) for p in k.tensors] == [("x", "in"), ("y", "inout"), ("alpha", "in")]
    assert "example_axpy" in [k.name for k in mtile.kernels()]
    x, y = uniform(rng, (1000,), np.float32), uniform(rng, (1000,), np.float32)
    want = 0.5 * x.astype(np.float64) + y
    mtile.launch("example_axpy", x, y, np.array([0.5], np.float32))
    assert_close(y, want, "float32", "example_axpy")
    with pytest.raises(mtile.UserError, match=r"kernel example_axpy takes 3 tensors \(x, y, alpha\)"):
        mtile.launch("example_axpy", x, y)


def test_a_second_library_with_a_taken_name_is_refused(axpy_library, tmp_path):
    mtile.load_library(axpy_library)
    copy = tmp_path / "libaxpy_again.so"  # another file: loaded anew, its entry point runs again
    shutil.copy(axpy_library, copy)
    with pytest.raises(mtile.UserError, match=r"mtile_register_kernels failed: .*'example_axpy' is already registered"):
        mtile.load_library(copy)
    assert [k.name for k in mtile.kernels()].count("example_axpy") == 1


def test_missing_library():
    with pytest.raises(mtile.UserError, match=r"can't load kernel library /nonexistent/libk.so"):
        mtile.load_library("/nonexistent/libk.so")
