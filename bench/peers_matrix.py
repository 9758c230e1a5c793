"""mtile's matrix and decode kernels against torch's (cuBLAS, SDPA) on one GPU, side by side in one run.

- gemm (bf16 in, f32 accumulation, bf16 out): TFLOP/s of mtile.gemm against torch.matmul(a, w.T)
  (cuBLAS) at 4096^3, (M=16, N=K=4096) and (M=8192, N=4096, K=14336);
- gemv (decode: M = 1..8): GB/s of mtile.gemv against torch.matmul, % of the copy bandwidth;
- attention_decode (one query token, GQA 32/8 heads, head_dim 128, contiguous KV cache): GB/s of
  mtile.attention_decode against torch.nn.functional.scaled_dot_product_attention, batch 1..64,
  context 4k and 32k;
- attention_prefill (causal, GQA 32/8 heads, head_dim 128): TFLOP/s of mtile.attention_prefill against
  scaled_dot_product_attention(is_causal=True), seq 4096, batch 1 and 8.
Each case is checked against a float64 product first. Memory-bound cases and the copy flush L2 (a 256 MiB read) before each run.
Run on the GPU machine: python bench/peers_matrix.py [--json out.json] [--runs 30]
"""
import argparse
import json
import math

import mtile
import torch
from peers import copy_gbps, make_l2_flush, median_ms, spin_up

GEMM_SHAPES = [(4096, 4096, 4096), (16, 4096, 4096), (8192, 4096, 14336)]
GEMV_SHAPES = [(m, 4096, 4096) for m in (1, 4, 8)] + [(1, 14336, 4096), (8, 4096, 14336)]
DECODE_SHAPES = [(b, s) for s in (4096, 32768) for b in (1, 8, 32, 64)]
PREFILL_SHAPES = [(1, 4096), (8, 4096)]
HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128


def time_ms(call, runs, flush=None):
    for _ in range(3):  # compiles, allocates, caches
        call()
    torch.cuda.synchronize()

    def timed(start, end):
        if flush is not None:
            flush()
        start.record()
        call()
        end.record()
        return 1

    return median_ms(runs, timed)


def check(got, want, what):
    got, want = got.double(), want.double()
    rel = ((got - want).norm() / want.norm()).item()
    if not rel <= 1e-2:  # NaN fails too
        raise SystemExit(f"{what}: rel L2 error {rel:.3g} against float64")


def gemm_rows(runs):
    rows = []
    for m, n, k in GEMM_SHAPES:
        a = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
        w = torch.randn(n, k, dtype=torch.bfloat16, device="cuda") / math.sqrt(k)
        out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
        mtile.gemm(a, w, out=out)
        check(out, a.double() @ w.double().T, f"gemm {m}x{n}x{k}")
        flops = 2 * m * n * k
        t_mtile = time_ms(lambda: mtile.gemm(a, w, out=out), runs)
        t_torch = time_ms(lambda: torch.matmul(a, w.T, out=out), runs)
        rows.append({"kernel": "gemm", "shape": f"{m}x{n}x{k}", "mtile_us": 1e3 * t_mtile, "torch_us": 1e3 * t_torch,
                     "mtile_tflops": flops / t_mtile / 1e9, "torch_tflops": flops / t_torch / 1e9})
    return rows


def gemv_rows(runs, copy, flush):
    rows = []
    for m, n, k in GEMV_SHAPES:
        x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
        w = torch.randn(n, k, dtype=torch.bfloat16, device="cuda") / math.sqrt(k)
        out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
        mtile.gemv(x, w, out=out)
        check(out, x.double() @ w.double().T, f"gemv {m}x{n}x{k}")
        nbytes = 2 * (n * k + m * k + m * n)
        t_mtile = time_ms(lambda: mtile.gemv(x, w, out=out), runs, flush)
        t_torch = time_ms(lambda: torch.matmul(x, w.T, out=out), runs, flush)
        rows.append({"kernel": "gemv", "shape": f"{m}x{n}x{k}", "mtile_us": 1e3 * t_mtile, "torch_us": 1e3 * t_torch,
                     "mtile_gbps": nbytes / t_mtile / 1e6, "torch_gbps": nbytes / t_torch / 1e6,
                     "mtile_copy_pct": 100 * nbytes / t_mtile / 1e6 / copy})
    return rows


def decode_rows(runs, copy, flush):
    rows = []
    scale = 1 / math.sqrt(HEAD_DIM)
    for batch, seq in DECODE_SHAPES:
        q = torch.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        k = torch.randn(batch, KV_HEADS, seq, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        v = torch.randn(batch, KV_HEADS, seq, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        out = torch.empty_like(q)
        mtile.attention_decode(q, k, v, scale, out=out)

        def sdpa():
            return torch.nn.functional.scaled_dot_product_attention(
                q.unsqueeze(2), k, v, scale=scale, enable_gqa=True).squeeze(2)

        want = sdpa().double()
        check(out, want, f"attention_decode batch {batch} seq {seq}")
        nbytes = 2 * (k.numel() + v.numel() + q.numel() + out.numel())
        t_mtile = time_ms(lambda: mtile.attention_decode(q, k, v, scale, out=out), runs, flush)
        t_torch = time_ms(sdpa, runs, flush)
        rows.append({"kernel": "attention_decode", "shape": f"b{batch} s{seq}", "mtile_us": 1e3 * t_mtile,
                     "torch_us": 1e3 * t_torch, "mtile_gbps": nbytes / t_mtile / 1e6,
                     "torch_gbps": nbytes / t_torch / 1e6, "mtile_copy_pct": 100 * nbytes / t_mtile / 1e6 / copy})
    return rows


def prefill_rows(runs):
    rows = []
    scale = 1 / math.sqrt(HEAD_DIM)
    for batch, seq in PREFILL_SHAPES:
        q = torch.randn(batch, HEADS, seq, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        k = torch.randn(batch, KV_HEADS, seq, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        v = torch.randn(batch, KV_HEADS, seq, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        out = torch.empty_like(q)
        mtile.attention_prefill(q, k, v, scale, out=out)

        def sdpa(q=q, k=k, v=v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale, is_causal=True,
                                                                    enable_gqa=True)

        check(out, sdpa(q.float(), k.float(), v.float()), f"attention_prefill batch {batch} seq {seq}")
        flops = 2 * batch * HEADS * HEAD_DIM * seq * (seq + 1)  # q K^T and P V over the causal half
        t_mtile = time_ms(lambda: mtile.attention_prefill(q, k, v, scale, out=out), runs)
        t_torch = time_ms(sdpa, runs)
        rows.append({"kernel": "attention_prefill", "shape": f"b{batch} s{seq}", "mtile_us": 1e3 * t_mtile,
                     "torch_us": 1e3 * t_torch, "mtile_tflops": flops / t_mtile / 1e9,
                     "torch_tflops": flops / t_torch / 1e9})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--only", help="gemm, gemv, attention_decode, attention_prefill (comma-separated)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else {"gemm", "gemv", "attention_decode", "attention_prefill"}
    spin_up()
    flush = make_l2_flush()
    copy = copy_gbps(args.runs, flush)
    rows = []
    if "gemm" in only:
        rows += gemm_rows(args.runs)
    if "gemv" in only:
        rows += gemv_rows(args.runs, copy, flush)
    if "attention_decode" in only:
        rows += decode_rows(args.runs, copy, flush)
    if "attention_prefill" in only:
        rows += prefill_rows(args.runs)
    print(f"# mtile vs torch, {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16; copy {copy:.0f} GB/s")
    print("| kernel | shape | mtile us | torch us | mtile | torch | mtile / torch speed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        unit = "tflops" if "mtile_tflops" in r else "gbps"
        suffix = " TFLOP/s" if unit == "tflops" else " GB/s"
        extra = f" ({r['mtile_copy_pct']:.0f}% of copy)" if "mtile_copy_pct" in r else ""
        print(f"| {r['kernel']} | {r['shape']} | {r['mtile_us']:.1f} | {r['torch_us']:.1f} | "
              f"{r['mtile_' + unit]:.0f}{suffix}{extra} | {r['torch_' + unit]:.0f}{suffix} | "
              f"{r['torch_us'] / r['mtile_us']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "copy_gbps": copy, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
