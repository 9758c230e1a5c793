"""Launches attention_decode (or attention_prefill) of one shape through mtile and torch's SDPA,
`--reps` times each, for scripts/probe/ncu_attention.sh to profile every launch under Nsight
Compute (bench/NOTES.md, eighteenth session's lead: where the decode's last 3-5% to SDPA goes).
"""
import argparse
import math

import torch

import mtile

ap = argparse.ArgumentParser()
ap.add_argument("--kernel", choices=["decode", "prefill"], default="decode")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--seq", type=int, default=4096)
ap.add_argument("--heads", type=int, default=32)
ap.add_argument("--kv-heads", type=int, default=8)
ap.add_argument("--d", type=int, default=128)
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
scale = 1 / math.sqrt(a.d)
q_seq = () if a.kernel == "decode" else (a.seq,)
q = torch.randn(a.batch, a.heads, *q_seq, a.d, dtype=torch.bfloat16, device="cuda")
k = torch.randn(a.batch, a.kv_heads, a.seq, a.d, dtype=torch.bfloat16, device="cuda")
v = torch.randn_like(k)
out = torch.empty_like(q)
sdpa = torch.nn.functional.scaled_dot_product_attention
for _ in range(a.reps):
    if a.kernel == "decode":
        mtile.attention_decode(q, k, v, scale, out=out)
        sdpa(q.unsqueeze(2), k, v, scale=scale, enable_gqa=True)
    else:
        mtile.attention_prefill(q, k, v, scale, out=out)
        sdpa(q, k, v, scale=scale, is_causal=True, enable_gqa=True)
torch.cuda.synchronize()
