"""Device probe (#10, not CI): the norm peers timed under the plain read flush and under a flush
that also displaces evict_last lines (torch.compile's kernels load x with evict_last)."""
import sys, os
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import torch, triton, triton.language as tl
import peers


@triton.jit
def _strong_flush(P, n, SINK, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    a = tl.load(P + i, mask=i < n, eviction_policy="evict_last")
    b = tl.load(P + i + n, mask=i < n, eviction_policy="evict_last")
    c = tl.load(P + i, mask=i < n, eviction_policy="evict_first")
    d = tl.load(P + i + n, mask=i < n, eviction_policy="evict_first")
    s = tl.sum(a ^ b ^ c ^ d, 0)
    tl.store(SINK + tl.program_id(0) * 0, s, mask=s == 12345)


def strong_flush():
    words = torch.ones(64 << 20, dtype=torch.int32, device="cuda")
    sink = torch.zeros(1, dtype=torch.int32, device="cuda")
    half = words.numel() // 2
    return lambda: _strong_flush[(triton.cdiv(half, 4096),)](words, half, sink, BLOCK=4096)


peers.spin_up()
plain_flush = peers.make_l2_flush()
strong = strong_flush()
impls = peers.implementations()
for sem, rows, n in (("post", 4096, 7168), ("post", 4096, 5120), ("post", 2048, 16384), ("post", 4096, 8192),
                     ("plain", 4096, 7168), ("pre", 4096, 7168), ("post", 16384, 4096)):
    x, r = (torch.randn(rows, n, device="cuda").to(torch.bfloat16) for _ in range(2))
    w = torch.randn(n, device="cuda").to(torch.bfloat16)
    line = []
    for rep in range(2):
        for fname, fl in (("plain", plain_flush), ("strong", strong)):
            for peer in ("mtile", "compile", "triton"):
                fn = impls[peer][sem]
                us = peers.time_us(lambda: fn(x, r, w), False, 100, fl)
                line.append(f"{peer}/{fname} {us:6.1f}")
    print(f"{sem} {rows}x{n}: " + " | ".join(line), flush=True)
