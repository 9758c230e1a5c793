"""torch tensors: the library on CPU tensors (CPU engine, bf16 included) and CUDA tensors (on torch's
current stream), CUDA graph capture and replay of add_rms_norm_, torch.compile graphs holding the
custom ops, and the refusals particular to torch. Skipped without torch; the CUDA tests without
a CUDA device."""
import os
import subprocess
import sys
import textwrap

import mtile
import pytest
from references import add_rms_norm, assert_close, rms_inv_scalar, rms_norm, softmax

torch = pytest.importorskip("torch")

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
EPS = 1e-5


def f64(t):
    return t.detach().float().cpu().double().numpy()


def name(dtype):
    return str(dtype).removeprefix("torch.")


def rand(shape, dtype, device, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo
    v = torch.where(v.abs() < 1e-3, torch.full_like(v, 0.5), v)  # never zero
    return v.to(dtype).to(device)


def nan(shape, dtype, device):
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, shape", [("rms_norm_residual", (3, 100)), ("rms_norm_residual", (2, 3, 4096)),
                                       ("ffai_rms_norm_residual", (3, 512))])
def test_norm_with_residual(device, dtype, fn, shape):
    x, residual, w = rand(shape, dtype, device, seed=1), rand(shape, dtype, device, seed=2), rand(shape[-1:], dtype, device, seed=3)
    out = nan(shape, dtype, device)
    assert getattr(mtile, fn)(x, residual, w, EPS, out=out) is out
    assert_close(f64(out), rms_norm(f64(x), f64(w), EPS, f64(residual)), name(dtype), fn)
    got = getattr(mtile, fn)(x, residual, w, EPS)
    assert got.dtype == dtype and got.device == x.device and got.shape == x.shape
    assert_close(f64(got), f64(out), name(dtype), f"{fn}, allocated out")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, shape", [("mt_rms_norm", (2, 256)), ("mt_rms_norm_small", (5, 64)),
                                       ("mt_rms_norm_wide", (2, 8203))])
def test_norm(device, dtype, fn, shape):
    x, w = rand(shape, dtype, device, seed=4), rand(shape[-1:], dtype, device, seed=5)
    out = nan(shape, dtype, device)
    getattr(mtile, fn)(x, w, EPS, out=out)
    assert_close(f64(out), rms_norm(f64(x), f64(w), EPS), name(dtype), fn)


def rounder(dtype):
    return lambda v: torch.from_numpy(v).to(dtype).double().numpy()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_add_rms_norm_in_place(device, dtype):
    x, residual, w = rand((3, 7168), dtype, device, seed=6), rand((3, 7168), dtype, device, seed=7), rand((7168,), dtype, device, seed=8)
    want_x, want_residual = add_rms_norm(f64(x), f64(residual), f64(w), EPS, rounder(dtype))
    assert mtile.add_rms_norm_(x, residual, w, EPS) is None
    assert_close(f64(residual), want_residual, name(dtype), "residual")
    assert_close(f64(x), want_x, name(dtype), "x")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_vector_add(device, dtype):
    x = rand((4, 1000), dtype, device, -4, 4, seed=9)
    assert_close(f64(mtile.softmax(x)), softmax(f64(x)), name(dtype), "softmax")
    a, b = rand((3, 333), dtype, device, seed=10), rand((3, 333), dtype, device, seed=11)
    assert_close(f64(mtile.vector_add(a, b)), f64(a) + f64(b), name(dtype), "vector_add")


@pytest.mark.parametrize("device", DEVICES)
def test_rms_inv_scalar(device):
    partial = rand((3, 32), torch.float32, device, 0.01, 4.0, seed=12)
    assert_close(f64(mtile.mt_rms_inv_scalar(partial, 128, EPS)), rms_inv_scalar(f64(partial), 128, EPS), "float32",
                 "mt_rms_inv_scalar")


@pytest.mark.parametrize("device", DEVICES)
def test_launch_and_parameters(device):
    x, residual = rand((4, 300), torch.bfloat16, device, seed=13), rand((4, 300), torch.bfloat16, device, seed=14)
    w = torch.nn.Parameter(rand((300,), torch.bfloat16, device, seed=15))  # a Tensor subclass, requires grad
    eps = torch.full((1,), EPS, dtype=torch.float32, device=device)
    out = nan((4, 300), torch.bfloat16, device)
    mtile.launch("rms_norm_residual", x, residual, w, out, eps)
    assert_close(f64(out), rms_norm(f64(x), f64(w), EPS, f64(residual)), "bfloat16", "launch")


@pytest.mark.parametrize("device", DEVICES)
def test_refusals(device):
    x, residual, w = rand((4, 256), torch.float16, device), rand((4, 256), torch.float16, device), rand((256,), torch.float16, device)
    with pytest.raises(mtile.UserError, match=r"tensor 'x' is not contiguous"):
        mtile.rms_norm_residual(x.t().contiguous().t(), residual, w)
    with pytest.raises(mtile.UserError, match=r"tensor 'x' is torch.float64"):
        mtile.rms_norm_residual(x.double(), residual.double(), w.double())
    with pytest.raises(mtile.UserError, match=r"the f16 variant takes .*; given x f16, residual f16, w f32"):
        mtile.rms_norm_residual(x, residual, w.float())
    with pytest.raises(mtile.UserError, match=r"'w' is a ndarray; the other tensors are torch tensors"):
        mtile.rms_norm_residual(x, residual, w.cpu().numpy())
    with pytest.raises(mtile.UserError, match=r"n % 128 == 0 \(n = 100\)"):
        mtile.ffai_rms_norm_residual(x[:, :100].contiguous(), residual[:, :100].contiguous(), w[:100].contiguous())


@needs_cuda
def test_mixed_devices_are_refused():
    x = rand((4, 256), torch.float32, "cuda")
    with pytest.raises(mtile.UserError, match=r"tensors are on different devices: 'x' on cuda:0, 'w' on cpu"):
        mtile.rms_norm_residual(x, x, rand((256,), torch.float32, "cpu"))


@pytest.mark.skipif(not HAS_CUDA or torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_launch_on_another_device_keeps_torchs_current_device():
    torch.cuda.set_device(0)
    x = rand((4, 256), torch.float32, "cuda:1")
    out = mtile.softmax(x)
    assert torch.cuda.current_device() == 0  # mtile put back the context it made current
    assert out.device == x.device
    torch.cuda.synchronize(1)
    assert_close(f64(out), softmax(f64(x)), "float32", "softmax on cuda:1")


@needs_cuda
def test_runs_on_the_current_stream():
    x, residual, w = (rand(s, torch.bfloat16, "cuda", seed=i) for i, s in enumerate([(64, 4096), (64, 4096), (4096,)]))
    late = torch.zeros_like(x)
    mtile.rms_norm_residual(late, residual, w, EPS)  # compiled before the timed part
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # the copy below lands late: a launch on another stream would miss it
        late.copy_(x)
        out = mtile.rms_norm_residual(late, residual, w, EPS)
    side.synchronize()
    assert_close(f64(out), rms_norm(f64(x), f64(w), EPS, f64(residual)), "bfloat16", "on a side stream")


@needs_cuda
def test_cuda_graph_capture_and_replay_of_add_rms_norm_():
    shape, dtype = (32, 4096), torch.bfloat16
    x, residual, w = nan(shape, dtype, "cuda"), nan(shape, dtype, "cuda"), rand(shape[-1:], dtype, "cuda", seed=20)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up (compiles the kernel, makes the eps buffer), as torch asks
        mtile.add_rms_norm_(x.clone(), residual.clone(), w, EPS)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        mtile.add_rms_norm_(x, residual, w, EPS)
    for seed in range(3):
        new_x, new_residual = rand(shape, dtype, "cuda", seed=30 + seed), rand(shape, dtype, "cuda", seed=40 + seed)
        want_x, want_residual = add_rms_norm(f64(new_x), f64(new_residual), f64(w), EPS, rounder(dtype))
        x.copy_(new_x)
        residual.copy_(new_residual)
        graph.replay()
        torch.cuda.synchronize()
        assert_close(f64(x), want_x, "bfloat16", f"replay {seed}: x")
        assert_close(f64(residual), want_residual, "bfloat16", f"replay {seed}: residual")


@needs_cuda
def test_new_eps_inside_a_capture_is_refused():
    x = rand((2, 4096), torch.float32, "cuda")
    mtile.rms_norm_residual(x, x, x[0], EPS)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(mtile.UserError, match=r"eps=0.125 is first used on cuda:0 inside a CUDA graph capture"):
        with torch.cuda.graph(graph):
            mtile.rms_norm_residual(x, x, x[0], 0.125)


@needs_cuda
@pytest.mark.skipif(not mtile.torch_ops_registered, reason="torch.library.custom_op needs torch >= 2.4")
def test_custom_ops_pass_opcheck():
    x, residual, w = (rand(s, torch.bfloat16, "cuda", seed=i) for i, s in enumerate([(8, 4096), (8, 4096), (4096,)]))
    torch.library.opcheck(torch.ops.mtile.rms_norm_residual.default, (x, residual, w, EPS),
                          test_utils=("test_schema", "test_faketensor"))
    torch.library.opcheck(torch.ops.mtile.add_rms_norm.default, (x.clone(), residual.clone(), w, EPS),
                          test_utils=("test_schema", "test_faketensor"))


@needs_cuda
@pytest.mark.skipif(not mtile.torch_ops_registered, reason="torch.library.custom_op needs torch >= 2.4")
def test_torch_compile_holds_rms_norm_residual():
    x, residual, w = (rand(s, torch.bfloat16, "cuda", seed=i) for i, s in enumerate([(64, 4096), (64, 4096), (4096,)]))
    want = 2 * rms_norm(f64(x), f64(w), EPS, f64(residual))

    def step(x, residual, w):
        return mtile.rms_norm_residual(x, residual, w, EPS) * 2

    graphs = []

    def keep_graph(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    torch._dynamo.reset()
    got = torch.compile(step, backend=keep_graph, fullgraph=True)(x, residual, w)
    assert any("mtile.rms_norm_residual" in g for g in graphs), graphs
    assert_close(f64(got), want, "bfloat16", "torch.compile, graph only")
    got = torch.compile(step, fullgraph=True)(x, residual, w)  # inductor
    assert_close(f64(got), want, "bfloat16", "torch.compile, inductor")


@needs_cuda
@pytest.mark.skipif(not mtile.torch_ops_registered, reason="torch.library.custom_op needs torch >= 2.4")
def test_torch_compile_of_the_in_place_step():
    x, residual, w = (rand(s, torch.bfloat16, "cuda", seed=i) for i, s in enumerate([(16, 7168), (16, 7168), (7168,)]))
    want_x, want_residual = add_rms_norm(f64(x), f64(residual), f64(w), EPS, rounder(torch.bfloat16))

    def step(x, residual, w):
        mtile.add_rms_norm_(x, residual, w, EPS)
        return x * 1

    torch._dynamo.reset()
    got = torch.compile(step, fullgraph=True)(x, residual, w)
    assert_close(f64(got), want_x, "bfloat16", "returned x")
    assert_close(f64(x), want_x, "bfloat16", "x in place")
    assert_close(f64(residual), want_residual, "bfloat16", "residual in place")


@needs_cuda
@pytest.mark.parametrize("conf", ["expandable_segments:True", "backend:cudaMallocAsync"])
def test_memory_of_torchs_other_allocators(conf):
    """Virtual-memory (expandable segments) and stream-ordered allocations have no context of their
    own; mtile takes them by device. A process of its own: the allocator is chosen at start."""
    code = textwrap.dedent("""
        import torch, mtile
        x, r = (torch.randn(4096, 8192, dtype=torch.bfloat16, device="cuda") for _ in range(2))
        w = torch.randn(8192, dtype=torch.bfloat16, device="cuda")
        out = mtile.rms_norm_residual(x, r, w, 1e-6)
        xf = x.float()
        want = r.float() + w.float() * xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)
        rel = ((out.float() - want).abs().max() / want.abs().max()).item()
        assert rel < 1e-2, rel
        print("ok", torch.cuda.get_allocator_backend())
    """)
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTORCH_CUDA_ALLOC_CONF=conf),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "ok" in run.stdout, run.stdout + run.stderr
