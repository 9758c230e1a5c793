"""torch next to mtile at the end of a tensor-parallel block (issue #13), on every GPU of the host:

  torch: dist.all_reduce(x) (NCCL), then a torch.compile'd add + RMSNorm in place
         (residual <- x + residual; x <- rmsnorm(residual) * w; bf16 tensors, f32 math, eps 1e-6)
  (a)    mtile: NCCL all_reduce_sum, then mtile's add_rms_norm
  (b)    mtile: the fused allreduce_add_rms_norm (one launch a rank, peers read over NVLink)

torch runs one process a GPU (torch.multiprocessing, a file store); each rank is checked against a
float64 reference first, then timed with CUDA events over K calls after warm-up (the slowest
rank; the median of 3 loops), and again replayed from a CUDA graph where capture works. Then
mtile_allreduce_figures runs (after the torch processes end) and one markdown table is printed.

  python3 bench/allreduce_peers.py --mtile-figures build-dev/mtile_allreduce_figures \\
      [--out-md FILE] [--out-json FILE] [--ranks N] [--timeout S]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import torch
import torch.distributed as dist

SHAPES = [(rows, n) for n in (4096, 8192) for rows in (1, 8, 32, 128, 1024, 8192)]
EPS = 1e-6


def iterations(rows, n):  # as mtile_allreduce_figures
    m = rows * n
    return (200, 20) if m <= 1 << 20 else (50, 5) if m <= 1 << 23 else (10, 5)


def add_rms_norm_(x, residual, w):
    r = (x.float() + residual.float()).to(torch.bfloat16)
    residual.copy_(r)
    rf = r.float()
    x.copy_((rf * torch.rsqrt(rf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(torch.bfloat16))


def inputs(rows, n, rank):
    """Rank `rank`'s partial sums, and the residual and weight every rank shares (bf16, on the CPU)."""
    g = torch.Generator().manual_seed(1000 * rows + n)
    residual = (torch.rand(rows, n, generator=g) * 2 - 1).bfloat16()
    w = (torch.rand(n, generator=g) * 2 - 1).bfloat16()
    gx = torch.Generator().manual_seed(7919 * (rank + 1) + rows * 31 + n)
    return (torch.rand(rows, n, generator=gx) * 2 - 1).bfloat16(), residual, w


def worker(rank, world, init_file, shapes, queue):
    try:
        torch.cuda.set_device(rank)
        dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=world)
        dev = torch.device("cuda", rank)
        for limit in ("cache_size_limit", "recompile_limit"):  # a compile a shape, none falling back to eager
            if hasattr(torch._dynamo.config, limit):
                setattr(torch._dynamo.config, limit, 64)
        fn = torch.compile(add_rms_norm_, dynamic=False)
        results = []
        for rows, n in shapes:
            x_host, residual_host, w_host = inputs(rows, n, rank)
            x, residual, w = x_host.to(dev), residual_host.to(dev), w_host.to(dev)

            def once():
                dist.all_reduce(x)
                fn(x, residual, w)

            # The check: one call against float64 on the host.
            once()
            torch.cuda.synchronize()
            s = sum(inputs(rows, n, p)[0].double() for p in range(world)).bfloat16().double()
            ref_res = (s + residual_host.double()).bfloat16().double()
            ref_out = ref_res * torch.rsqrt(ref_res.pow(2).mean(-1, keepdim=True) + EPS) * w_host.double()
            err = max((x.cpu().double() - ref_out).abs().max().item(),
                      (residual.cpu().double() - ref_res).abs().max().item())
            iters, calls = iterations(rows, n)
            for _ in range(5):
                once()

            def timed(call, k):
                loops = []
                for _ in range(3):
                    dist.barrier()
                    torch.cuda.synchronize()
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(k):
                        call()
                    end.record()
                    end.synchronize()
                    loops.append(start.elapsed_time(end) * 1e3 / k)
                t = torch.tensor([sorted(loops)[1]], dtype=torch.float64, device=dev)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                return t.item()

            us = timed(once, iters)
            graph, graph_us, graph_note = None, None, ""
            try:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    once()
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    for _ in range(calls):
                        once()
                graph.replay()
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001: reported, the eager figure stands
                graph, graph_note = None, f"graph: {type(e).__name__}: {e}"[:200]
            # Every rank times the graphs, or none does (the timing loop has collectives).
            ok = torch.tensor([1 if graph is not None else 0], device=dev)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            if ok.item():
                graph_us = timed(graph.replay, max(iters // calls, 4)) / calls
            elif not graph_note:
                graph_note = "graph: another rank's capture failed"
            del graph
            results.append({"rows": rows, "n": n, "torch_us": us, "torch_graph_us": graph_us,
                            "torch_max_abs": err, "torch_note": graph_note})
            del x, residual, w
            torch.cuda.empty_cache()
        if rank == 0:
            queue.put(("ok", results))
        dist.barrier()
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001: the parent reports it
        queue.put(("error", f"rank {rank}:\n{traceback.format_exc()}"))
        raise


def run_torch(world, shapes, timeout):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "store")
        procs = [ctx.Process(target=worker, args=(r, world, init_file, shapes, queue)) for r in range(world)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        outcome = None
        while outcome is None and time.monotonic() < deadline:
            try:
                outcome = queue.get(timeout=5)
            except Exception:  # queue.Empty
                if any(p.exitcode not in (None, 0) for p in procs) and queue.empty():
                    time.sleep(2)  # let a failing rank's message arrive
                    if queue.empty():
                        outcome = ("error", "a torch rank exited with "
                                   f"{[p.exitcode for p in procs]} and no message")
        for p in procs:
            p.join(timeout=max(5, deadline - time.monotonic()) if outcome and outcome[0] == "ok" else 5)
            if p.is_alive():
                p.kill()
                p.join()
        if outcome is None:
            raise RuntimeError(f"the torch processes gave no result within {timeout} s (killed)")
        if outcome[0] != "ok":
            raise RuntimeError(f"the torch processes failed: {outcome[1]}")
        return outcome[1]


def run_mtile(figures, world, timeout):
    if not os.access(figures, os.X_OK):
        raise RuntimeError(f"{figures} is not an executable (build mtile_allreduce_figures, or pass --mtile-figures)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        try:
            p = subprocess.run([figures, "--json", out, "--ranks", str(world)], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{figures} did not finish within {timeout} s:\n{e.stdout or ''}{e.stderr or ''}")
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        if not os.path.exists(out):
            raise RuntimeError(f"{figures} exited with {p.returncode} and wrote no JSON")
        with open(out) as f:
            return json.load(f), p.returncode


def fmt_us(v):
    return "-" if v is None else f"{v:.1f}"


def fmt_ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mtile-figures", default="build-dev/mtile_allreduce_figures")
    ap.add_argument("--out-md", help="the markdown table")
    ap.add_argument("--out-json", help="every figure, torch's and mtile's")
    ap.add_argument("--ranks", type=int, help="GPUs (default: all)")
    ap.add_argument("--timeout", type=int, default=420, help="seconds for each side")
    ap.add_argument("--shapes", help="rowsxn,... (default: rows 1..8192 at n 4096 and 8192)")
    args = ap.parse_args()
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # as mtile: no NVLink multicast; the workers inherit it
    world = args.ranks or torch.cuda.device_count()
    if world < 2:
        sys.exit(f"allreduce_peers: needs at least 2 GPUs, torch sees {torch.cuda.device_count()}")
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]

    errors = []
    try:
        torch_rows = {(r["rows"], r["n"]): r for r in run_torch(world, shapes, args.timeout)}
    except Exception as e:  # noqa: BLE001: reported with the table
        errors.append(f"torch: {e}")
        torch_rows = {}
    mtile, rc, mtile_nccl = {}, None, "?"
    try:
        figures, rc = run_mtile(args.mtile_figures, world, args.timeout)
        mtile_nccl = figures.get("nccl", "?")
        mtile = {(r["rows"], r["n"]): r for r in figures.get("results", [])}
        if rc != 0:
            errors.append(f"mtile_allreduce_figures exited with {rc} (see its check column)")
    except Exception as e:  # noqa: BLE001
        errors.append(f"mtile: {e}")

    name = torch.cuda.get_device_name(0)
    try:
        v = torch.cuda.nccl.version()
        nccl = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:  # noqa: BLE001: only a label
        nccl = "?"
    lines = [f"{world} x {name}, bf16, torch {torch.__version__} (NCCL {nccl}), mtile NCCL {mtile_nccl}; "
             "us per call, the slowest rank; graph: replayed from a CUDA graph a rank", "",
             "| rows | n | torch us | (a) us | (b) us | torch/(b) | (a)/(b) | torch graph us | (a) graph us | "
             "(b) graph us | torch/(b) graph | (a)/(b) graph | checks (torch err, mtile) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    combined = []
    for rows, n in shapes:
        t, m = torch_rows.get((rows, n), {}), mtile.get((rows, n), {})
        tu, tg = t.get("torch_us"), t.get("torch_graph_us")
        au, bu, ag, bg = m.get("a_us"), m.get("b_us"), m.get("a_graph_us"), m.get("b_graph_us")
        terr = t.get("torch_max_abs")
        check = f"{'-' if terr is None else f'{terr:.1e}'}, {m.get('check', '-')}"
        lines.append(f"| {rows} | {n} | {fmt_us(tu)} | {fmt_us(au)} | {fmt_us(bu)} | {fmt_ratio(tu, bu)} | "
                     f"{fmt_ratio(au, bu)} | {fmt_us(tg)} | {fmt_us(ag)} | {fmt_us(bg)} | {fmt_ratio(tg, bg)} | "
                     f"{fmt_ratio(ag, bg)} | {check} |")
        combined.append({"rows": rows, "n": n, **t, **m})
    notes = [f"- {r['rows']}x{r['n']}: {r[k]}" for r in combined for k in ("torch_note", "note") if r.get(k)]
    errs = [f"- ERROR {e}" for e in errors]
    table = "\n".join(lines + ([""] + notes if notes else []) + ([""] + errs if errs else []))
    print(table)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(table + "\n")
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump({"ranks": world, "device": name, "torch": torch.__version__, "results": combined,
                       "errors": errors}, f, indent=2)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
