#!/usr/bin/env bash
# Twenty-fifth session, last call: scripts/gpu_check.sh on the final tree (its logs under $OUT),
# then bench/peers_matrix.py (every matrix kernel) in one run. Carry build-dev/mtile,
# build-dev/lib, build-dev/mtile_cuda_figures and build-dev/tests.
set -uo pipefail
OUT=${OUT:-/tmp/out}
bash scripts/gpu_check.sh 2>&1 | tail -n 70
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 200 python3 bench/peers_matrix.py \
  --json "$OUT/peers_matrix.json" >"$OUT/peers_matrix.md" 2>&1
echo "peers rc $?"
cat "$OUT/peers_matrix.md"
