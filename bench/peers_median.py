"""Per-cell medians of several bench/peers.py runs: the same table, each implementation's time the
median of its times over the runs, and the range of mtile's ratio to the best peer over the runs
(how far one run's ratio can be trusted).

  python bench/peers_median.py run1.json run2.json run3.json [--out table.md] [--json merged.json]
"""
import argparse
import json
import statistics
import sys

PEERS = ["mtile", "eager", "compile", "triton"]


def best_peer_ratio(row):
    """best peer's time / mtile's (> 1: mtile faster), or None."""
    peers = [row[p] for p in PEERS[1:] if isinstance(row.get(p), float)]
    return min(peers) / row["mtile"] if peers and isinstance(row.get("mtile"), float) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="peers.py --json files")
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--json", help="write the medians here")
    args = ap.parse_args()
    runs = [json.load(open(path)) for path in args.runs]
    devices = {r["device"] for r in runs}
    if len(devices) != 1:
        sys.exit(f"peers_median: runs on different devices: {sorted(devices)}")
    copy = statistics.median(r["copy_gbps"] for r in runs)
    lines = [f"# {runs[0]['device']}: {runs[0]['versions']}; bf16, f32 math; median of {len(runs)} runs of "
             f"bench/peers.py per cell",
             f"# 512 MiB device-to-device copy: {copy:.0f} GB/s (read + write; median of the runs)",
             "| semantics | rows x n | timed as | mtile us | eager us | compile us | triton us | best peer / mtile | "
             "its range over runs | mtile % copy | best peer % copy |",
             "|" + "---|" * 11]
    merged = []
    for cells in zip(*(r["results"] for r in runs)):
        first = cells[0]
        key = (first["semantics"], first["rows"], first["n"])
        if any((c["semantics"], c["rows"], c["n"]) != key for c in cells):
            sys.exit(f"peers_median: the runs do not hold the same cases ({key})")
        row = {k: first[k] for k in ("semantics", "rows", "n", "bytes", "graph")}
        for p in PEERS:
            times = [c.get(p) for c in cells if isinstance(c.get(p), float)]
            row[p] = statistics.median(times) if len(times) == len(cells) else None
        ratios = [x for x in (best_peer_ratio(c) for c in cells) if x is not None]
        ratio = best_peer_ratio(row)
        merged.append(dict(row, ratio=ratio, ratio_range=[min(ratios), max(ratios)] if ratios else None))
        gbps = lambda t: row["bytes"] / (t * 1e-6) / 1e9
        best = min((row[p] for p in PEERS[1:] if row[p] is not None), default=None)
        cell = lambda p: f"{row[p]:.2f}" if row[p] is not None else "-"
        lines.append(
            f"| {row['semantics']} | {row['rows']} x {row['n']} | {'graph' if row['graph'] else 'events, L2 flushed'} | "
            + " | ".join(cell(p) for p in PEERS)
            + (f" | {ratio:.2f} | " if ratio is not None else " | - | ")
            + (f"{min(ratios):.2f}-{max(ratios):.2f} | " if ratios else "- | ")
            + (f"{100 * gbps(row['mtile']) / copy:.0f}% | " if row["mtile"] else "- | ")
            + (f"{100 * gbps(best) / copy:.0f}% |" if best else "- |"))
    lines.append("# best peer / mtile > 1: mtile takes less time than the fastest of torch eager, torch.compile "
                 "and Triton")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": runs[0]["device"], "versions": runs[0]["versions"], "copy_gbps": copy,
                       "runs": len(runs), "results": merged}, f, indent=1)


if __name__ == "__main__":
    main()
