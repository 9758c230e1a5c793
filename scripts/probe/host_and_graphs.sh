#!/usr/bin/env bash
# Device probe (session 13): Python host time (exchange API vs attributes), and the small norms
# as graph replays through Python against `mtile bench`, PDL on and off. Needs build-dev.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
export MTILE_CACHE_DIR=/tmp/mtile-cache
python3 bench/python_overhead.py --calls 10000 2>&1 | tee "$OUT/overhead.md"
for pdl in 1 0; do MTILE_CUDA_PDL=$pdl python3 scripts/probe/graph_small.py 2>&1 | grep -v Warning; done | tee "$OUT/graph_small.txt"
for pdl in 1 0; do
  MTILE_CUDA_PDL=$pdl build-dev/mtile bench --filter '^(rms_norm|rms_norm_residual)$' --shape rows=1,n=4096 2>&1 | tail -4
done | tee "$OUT/bench_small.txt"
python3 bench/python_overhead.py --calls 10000 2>&1 | tee "$OUT/overhead2.md"
