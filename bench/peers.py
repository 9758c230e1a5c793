"""mtile against its peers on one GPU, in one run: torch eager, torch.compile and Triton kernels of
the same math, bf16 tensors with f32 math, one table with ratios.

  plain = rms_norm: out = w * x * rsqrt(mean(x^2) + eps)
  post  = rms_norm_residual: out = residual + w * x * rsqrt(mean(x^2) + eps)
  pre  = add_rms_norm (in place): residual <- x + residual; x <- rmsnorm(residual) * w

Each implementation is checked against a float64 reference before it is timed. Times are device
events after warm-up, the median of many runs, the peers of a case timed in turns (five rounds): shapes of up to 256 rows as CUDA graph replays (a
graph of CALLS calls, per call, each timed replay queued behind an untimed one), the larger ones call by call with L2 flushed (a 256 MiB buffer
read, make_l2_flush) before each. GB/s counts (2RN + N) * 2 bytes for plain, (3RN + N) * 2 for post and (4RN + N) * 2 for pre; "% copy"
is of a 512 MiB device-to-device copy timed in the same run, each copy after the same flush.

  python bench/peers.py [--json results.json] [--runs 50] [--only plain:4096x7168,pre:4096x8192]
"""
import argparse
import json
import statistics
import sys

import mtile
import torch

try:
    import peers_triton
    import triton
except ImportError as e:
    peers_triton = None
    print(f"(no Triton column: {e})", file=sys.stderr)

SHAPES = [(1, 4096), (32, 4096), (256, 4096), (2048, 4096), (16384, 4096), (4096, 5120), (4096, 7168),
          (4096, 8192), (2048, 16384),
          # Hidden sizes that are not multiples of 128, and a long row.
          (2048, 1000), (4096, 2880), (64, 65536)]
GRAPH_MAX_ROWS = 256
CALLS_PER_GRAPH = 20
EPS = 1e-6
DTYPE = torch.bfloat16
PEERS = ["mtile", "eager", "compile", "triton"]


# ---- the implementations: plain and post(x, residual, w) -> out; pre(x, residual, w) in place ---

SEMANTICS = ("plain", "post", "pre")
TENSORS_MOVED = {"plain": 2, "post": 3, "pre": 4}  # row tensors read or written


def eager_plain(x, residual, w):
    xf = x.float()
    return (w.float() * xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)



def eager_post(x, residual, w):
    xf = x.float()
    return (residual.float() + w.float() * xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def eager_pre(x, residual, w):
    residual.add_(x)  # rounded to bf16 as it is stored; that is what is normalised
    s = residual.float()
    x.copy_((s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(x.dtype))


def implementations():
    """{peer: {semantics: fn(x, residual, w)}}"""
    eager = {"plain": eager_plain, "post": eager_post, "pre": eager_pre}
    impls = {
        "mtile": {"plain": lambda x, r, w: mtile.rms_norm(x, w, EPS),
                  "post": lambda x, r, w: mtile.rms_norm_residual(x, r, w, EPS),
                  "pre": lambda x, r, w: mtile.add_rms_norm_(x, r, w, EPS)},
        "eager": eager,
        "compile": {s: torch.compile(fn, dynamic=False) for s, fn in eager.items()},
    }
    if peers_triton is not None:
        impls["triton"] = {"plain": lambda x, r, w: peers_triton.plain(x, w, EPS, torch.empty_like(x)),
                           "post": lambda x, r, w: peers_triton.post(x, r, w, EPS, torch.empty_like(x)),
                           "pre": lambda x, r, w: peers_triton.pre(x, r, w, EPS)}
    return impls


# ---- checks against float64 ---------------------------------------------------------------------


def reference(semantics, x, residual, w):
    xd, rd, wd = x.double(), residual.double(), w.double()
    if semantics == "plain":
        return (wd * xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + EPS),)
    if semantics == "post":
        return (rd + wd * xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + EPS),)
    s = (xd + rd).to(DTYPE).double()
    return (s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + EPS) * wd, s)


def check(semantics, fn, x, residual, w):
    """'' when fn's result matches the float64 reference within bf16's tolerance, else why not."""
    want = reference(semantics, x, residual, w)
    if semantics != "pre":
        got = (fn(x, residual, w),)
    else:
        xc, rc = x.clone(), residual.clone()
        fn(xc, rc, w)
        got = (xc, rc)
    torch.cuda.synchronize()
    for g, r in zip(got, want):
        g = g.double()
        err = (g - r).abs().max().item()
        rel = ((g - r).norm() / r.norm()).item()
        if not (err <= 3e-2 and rel <= 4e-3):  # NaN fails too
            return f"max |err| {err:.3g}, rel L2 {rel:.3g}"
    return ""


# ---- timing -------------------------------------------------------------------------------------


def median_ms(runs, timed):
    """Median over `runs` of (device time between the events timed() records) / (calls it returns)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(runs):
        calls = timed(start, end)
        end.synchronize()
        samples.append(start.elapsed_time(end) / calls)
    return statistics.median(samples)


def spin_up(seconds=1.0):
    """Keeps the GPU busy for `seconds` so that its clocks leave idle (345 MHz on an H100) before
    anything is timed: the first cases of a fresh process otherwise run while they ramp (a gemm
    peer measured 15% slow, bench/NOTES.md, tenth session)."""
    a = torch.randn(4096, 4096, dtype=torch.bfloat16, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    while True:
        for _ in range(20):
            a @ a
        end.record()
        end.synchronize()
        if start.elapsed_time(end) >= 1000 * seconds:
            return


def make_l2_flush():
    """A function that evicts the L2 cache by reading a 256 MiB buffer (more than any L2 holds): with
    Triton, twice, under evict_last and then evict_first policies (peers_triton.evict_l2), since lines
    a kernel loaded as evict_last survive a plain read (bench/NOTES.md, eleventh session). A flush
    that writes (zero_) leaves its lines dirty, and their write-back lands in the timed kernel: 4-10
    us more at 16-64 MiB (tenth session)."""
    words = torch.ones(64 << 20, dtype=torch.int32, device="cuda")
    if peers_triton is None:
        print("WARNING: no Triton: the L2 flush is a plain read, which leaves lines that kernels loaded "
              "as evict_last (torch.compile's) in L2; their figures are then optimistic", file=sys.stderr)
        return lambda: words.max()
    sink = torch.zeros(1, dtype=torch.int32, device="cuda")
    return lambda: peers_triton.evict_l2(words, sink)


def make_timer(call, as_graph, flush):
    """Warms `call` up and returns timed(start, end) -> calls timed: a replay of a CUDA graph of
    CALLS_PER_GRAPH calls, or one call after an L2 flush."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: compiles, allocates, caches
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    if as_graph:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(CALLS_PER_GRAPH):
                call()
        graph.replay()

        def timed(start, end, _tensors=call):  # the graph reads the tensors `call` holds: keep them alive
            # A replay ahead of the timed one keeps the GPU busy while the host launches the timed
            # replay, so that its time is the calls', not the host's graph launch (~6 us through
            # torch: 0.3 us a call of 20, bench/NOTES.md thirteenth session).
            graph.replay()
            start.record()
            graph.replay()
            end.record()
            return CALLS_PER_GRAPH

        return timed

    def timed(start, end):
        flush()  # evicts the inputs and the last run's outputs from L2
        start.record()
        call()
        end.record()
        return 1

    return timed


ROUNDS = 5


def interleaved_us(timers, runs):
    """{name: median us per call} of timers {name: timed}, timed in ROUNDS rounds that take each in
    turn: the clocks' drift over a case (they sink while the host checks the last one against
    float64) then weighs on every peer alike, not on the one timed first."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = {name: [] for name in timers}
    for _ in range(ROUNDS):
        for name, timed in timers.items():
            for _ in range(max(1, runs // ROUNDS)):
                calls = timed(start, end)
                end.synchronize()
                samples[name].append(start.elapsed_time(end) / calls)
    return {name: 1000 * statistics.median(v) for name, v in samples.items()}


def copy_gbps(runs, flush):
    src = torch.empty(512 << 20, dtype=torch.uint8, device="cuda").fill_(1)
    dst = torch.empty_like(src)

    def timed(start, end):
        flush()  # as every events-timed case: the last copy's dirty lines written back before
        start.record()
        dst.copy_(src)
        end.record()
        return 1

    dst.copy_(src)
    return 2 * src.numel() / (median_ms(runs, timed) * 1e-3) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="timed runs per cell (graph shapes: 4x as many replays)")
    ap.add_argument("--json", help="write every figure here too")
    ap.add_argument("--only", help="only these semantics and shapes, e.g. plain:4096x7168,pre:4096x8192")
    args = ap.parse_args()
    torch._dynamo.config.cache_size_limit = 64  # a compile per shape and semantics, none falling back
    torch._dynamo.config.accumulated_cache_size_limit = 512
    spin_up()
    flush = make_l2_flush()
    copy = copy_gbps(args.runs, flush)
    impls = implementations()
    versions = f"torch {torch.__version__}, mtile {mtile.__version__}" + (
        f", triton {triton.__version__}" if peers_triton else "")
    print(f"# {torch.cuda.get_device_name()}: {versions}; bf16, f32 math, eps {EPS}")
    print(f"# 512 MiB device-to-device copy: {copy:.0f} GB/s (read + write)")
    print("| semantics | rows x n | timed as | mtile us | eager us | compile us | triton us | eager / mtile | "
          "compile / mtile | triton / mtile | mtile GB/s | mtile % copy | best peer % copy |")
    print("|" + "---|" * 13)
    results, failures = [], 0
    only = {tuple(item.split(":")) for item in args.only.split(",")} if args.only else None
    for semantics in SEMANTICS:
        for rows, n in SHAPES:
            if only is not None and (semantics, f"{rows}x{n}") not in only:
                continue
            gen = torch.Generator(device="cuda").manual_seed(rows * 7 + n)
            x, residual = (torch.rand(rows, n, generator=gen, device="cuda", dtype=torch.float32).mul_(2).sub_(1)
                           .to(DTYPE) for _ in range(2))
            w = torch.rand(n, generator=gen, device="cuda", dtype=torch.float32).mul_(2).sub_(1).to(DTYPE)
            nbytes = (TENSORS_MOVED[semantics] * rows * n + n) * 2
            as_graph = rows <= GRAPH_MAX_ROWS
            row = {"semantics": semantics, "rows": rows, "n": n, "bytes": nbytes, "graph": as_graph}
            timers = {}
            for name in PEERS:
                if name not in impls:
                    row[name] = None
                    continue
                fn = impls[name][semantics]
                why = check(semantics, fn, x, residual, w)
                if why:
                    failures += 1
                    row[name] = f"FAIL: {why}"
                    print(f"{name} {semantics} {rows}x{n} does not match float64: {why}", file=sys.stderr)
                    continue
                xi, ri = x.clone(), residual.clone()  # pre writes them: each peer starts from the same values
                timers[name] = make_timer(lambda fn=fn, xi=xi, ri=ri: fn(xi, ri, w), as_graph, flush)
            spin_up(0.05)  # out of the idle clocks of the float64 checks
            row.update(interleaved_us(timers, args.runs * 4 if as_graph else args.runs))
            results.append(row)
            us = {p: row[p] for p in PEERS if isinstance(row[p], float)}
            cell = lambda p: f"{us[p]:.1f}" if p in us else ("n/a" if row[p] is None else "FAIL")
            ratio = lambda p: f"{us[p] / us['mtile']:.2f}" if p in us and "mtile" in us else "-"
            gbps = {p: nbytes / (t * 1e-6) / 1e9 for p, t in us.items()}
            peers_best = max((g for p, g in gbps.items() if p != "mtile"), default=0.0)
            print(f"| {semantics} | {rows} x {n} | {'graph' if as_graph else 'events, L2 flushed'} | "
                  + " | ".join(cell(p) for p in PEERS) + " | " + " | ".join(ratio(p) for p in PEERS[1:])
                  + f" | {gbps.get('mtile', 0):.0f} | {100 * gbps.get('mtile', 0) / copy:.0f}% | "
                  f"{100 * peers_best / copy:.0f}% |", flush=True)
    print("# ratios > 1: mtile takes less time than that peer")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "versions": versions, "copy_gbps": copy,
                       "results": results}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
