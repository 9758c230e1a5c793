"""The small norms as CUDA graph replays through Python (bench/peers.py's timer: a graph of 20
calls, us a call, median), mtile and Triton, and mtile with outputs preallocated (out=), so that a
difference between `mtile bench` (~1.5 us at 1 x 4096) and the peers table (~1.8) can be placed.
Run twice on the GPU machine, MTILE_CUDA_PDL=1 and =0: PYTHONPATH=python:bench python3 scripts/probe/graph_small.py"""
import os

import mtile
import peers
import peers_triton
import torch

peers.spin_up()
flush = peers.make_l2_flush()
for rows in (1, 32, 256):
    n = 4096
    x, r = (torch.randn(rows, n, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    out = torch.empty_like(x)
    calls = {
        "mtile plain": lambda: mtile.rms_norm(x, w, 1e-6),
        "mtile plain out=": lambda: mtile.rms_norm(x, w, 1e-6, out=out),
        "triton plain": lambda: peers_triton.plain(x, w, 1e-6, torch.empty_like(x)),
        "mtile post": lambda: mtile.rms_norm_residual(x, r, w, 1e-6),
        "mtile post out=": lambda: mtile.rms_norm_residual(x, r, w, 1e-6, out=out),
        "triton post": lambda: peers_triton.post(x, r, w, 1e-6, torch.empty_like(x)),
    }
    timers = {name: peers.make_timer(fn, True, flush) for name, fn in calls.items()}
    us = peers.interleaved_us(timers, 200)
    print(f"PDL={os.environ.get('MTILE_CUDA_PDL', 'default')} rows={rows}: " +
          ", ".join(f"{k} {v:.2f}" for k, v in us.items()), flush=True)
