"""Host time per call from Python, for a launch whose GPU work is tiny (rms_norm_residual on 1 x 4096
bf16): mtile's function, its parts (ctypes, the C ABI launch alone), and peers on the same card
(a raw torch op, torch eager RMSNorm, torch.compile, a Triton kernel's launcher).

Each figure is the median over repeats of (wall time of N back-to-back calls) / N, with no
synchronisation inside, the cases timed in turn within each repeat: the GPU work per call (~2-3 us) is shorter than the host's, so the host is
what is timed. Run on the GPU machine: python bench/python_overhead.py
"""
import argparse
import statistics
import time

import mtile
import torch
from mtile import _capi, _launch


OUT_CALL = "mtile.rms_norm_residual(..., out=out)"
LAUNCHER = "  part: the C launcher (mtile._launcher.launch: 4 tensors read in C, the C ABI launch)"
C_ABI = "  part: C ABI launch through ctypes (mtile_launch_packed)"
ATTRIBUTES = " [tensors read by attribute]"


def per_call_us(cases, calls, repeats):
    """{label: median us per call}: each repeat times every case once, in turn, so that a host
    whose speed drifts (other tenants) moves every figure alike. A label ending in ATTRIBUTES is
    timed with the launcher bound to read tensors by their Python attributes."""
    for _, fn in cases:
        for _ in range(max(100, calls // 10)):
            fn()
    torch.cuda.synchronize()
    samples = {label: [] for label, _ in cases}
    for _ in range(repeats):
        for label, fn in cases:
            _launch.bind_launcher(exchange=not label.endswith(ATTRIBUTES))
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[label].append((time.perf_counter() - t0) / calls * 1e6)
            torch.cuda.synchronize()
    return {label: statistics.median(s) for label, s in samples.items()}


def eager_rms_norm_residual(x, residual, w, eps):
    xf = x.float()
    return (residual.float() + w.float() * xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rows, n, eps = 1, 4096, 1e-6
    x, residual = (torch.randn(rows, n, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    out = torch.empty_like(x)
    eps_buf = torch.full((1,), eps, dtype=torch.float32, device="cuda")
    k = mtile.kernel("rms_norm_residual")
    stream = torch.cuda.current_stream().cuda_stream
    call = [k.handle, stream, _capi.BF16, *k.counts]
    for t in (x, residual, w, out, eps_buf):
        call += (t.data_ptr(), t.numel(), _capi.BF16 if t.dtype == torch.bfloat16 else _capi.F32, t.get_device())
    call += (rows, n)
    block = k.pack_call(*call)

    def c_launch():  # the C ABI alone: checks, plan lookup, wrap, cuLaunchKernel
        _capi.launch_packed(block)

    mtile.rms_norm_residual(x, residual, w, eps, out=out)  # makes eps's buffer
    records = mtile._ops._eps_records[eps]

    def c_launcher():  # mtile._launcher alone: the four tensors read in C, then the C ABI launch
        _launch.fast(k.handle, -1, (x, residual, w, out, records), None, (), None, 0b1010, 0b100)

    cases = [
        ("mtile.rms_norm_residual(x, residual, w, eps)", lambda: mtile.rms_norm_residual(x, residual, w, eps)),
        (OUT_CALL, lambda: mtile.rms_norm_residual(x, residual, w, eps, out=out)),
        ("mtile.add_rms_norm_(x, residual, w, eps)", lambda: mtile.add_rms_norm_(x, residual, w, eps)),
        ("mtile.launch('rms_norm_residual', 5 tensors)", lambda: mtile.launch("rms_norm_residual", x, residual, w, out, eps_buf)),
        (LAUNCHER, c_launcher),
        (OUT_CALL + ATTRIBUTES, lambda: mtile.rms_norm_residual(x, residual, w, eps, out=out)),
        (LAUNCHER + ATTRIBUTES, c_launcher),
        (C_ABI, c_launch),
        ("  part: a ctypes call that does nothing", _capi.abi_version),
        ("  part: torch.empty_like(x)", lambda: torch.empty_like(x)),
        ("  part: one tensor's record (is_contiguous, dtype, is_cuda, get_device, data_ptr, numel)",
         lambda: (x.is_contiguous(), x.dtype, x.is_cuda, x.get_device(), x.data_ptr(), x.numel())),
        ("  part: torch's current raw stream", lambda: _launch._cuda_stream(0)),
        ("  part: k.pack_call(the header, 5 records, 2 dims)", lambda: k.pack_call(*call)),
        ("  part: torch.compiler.is_compiling()", torch.compiler.is_compiling),
        ("torch.add(x, residual, out=out) (one raw op)", lambda: torch.add(x, residual, out=out)),
        ("torch eager RMSNorm + residual (several ops)", lambda: eager_rms_norm_residual(x, residual, w, eps)),
    ]
    compiled = torch.compile(eager_rms_norm_residual)
    compiled(x, residual, w, eps)
    cases.append(("torch.compile'd RMSNorm + residual", lambda: compiled(x, residual, w, eps)))
    try:
        import peers_triton

        cases.append(("Triton RMSNorm + residual (its launcher)", lambda: peers_triton.post(x, residual, w, eps, out)))
    except ImportError as e:
        print(f"(no Triton figure: {e})")

    exchange = _launch.bind_launcher()
    print(f"# Host time per call from Python, {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"mtile {mtile.__version__}; {args.calls} calls x {args.repeats} repeats, median; tensors read "
          f"{'through DLPack exchange API' if exchange else 'by attribute (torch has no DLPack exchange API)'}")
    print("| call | us per call |\n|---|---|")
    figures = per_call_us(cases, args.calls, args.repeats)
    for label, _ in cases:
        print(f"| {label} | {figures[label]:.2f} |")
    total, launcher, c_abi = (figures[label] for label in (OUT_CALL, LAUNCHER, C_ABI))
    print(f"|   derived: the Python function around the launcher (out= call - launcher) | {total - launcher:.2f} |")
    print(f"|   derived: reading 4 tensors in C (launcher - C ABI launch through ctypes) | {launcher - c_abi:.2f} |")
    _launch.bind_launcher()


if __name__ == "__main__":
    main()
