"""Device probe: torch.compile's kernels for the wide post-norm (code and launch), for #10."""
import os, sys, glob
import torch
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import peers

out = os.environ.get("OUT", "/tmp")
# PROBE_SHAPES="post:2048:1000 plain:2048:1000" picks others.
shapes = [(f, int(r), int(c)) for f, r, c in (s.split(":") for s in os.environ["PROBE_SHAPES"].split())] if (
    os.environ.get("PROBE_SHAPES")) else [("post", 4096, 7168), ("post", 4096, 5120), ("post", 2048, 16384), ("plain", 4096, 7168)]
for name, rows, n in shapes:
    x, r = (torch.randn(rows, n, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    fn = {"post": peers.eager_post, "plain": peers.eager_plain}[name]
    c = torch.compile(fn, dynamic=False)
    torch._dynamo.reset()
    c = torch.compile(fn, dynamic=False)
    c(x, r, w)
    torch.cuda.synchronize()
    print("done", name, rows, n, flush=True)
