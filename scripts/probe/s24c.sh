#!/usr/bin/env bash
# Twenty-fourth session, third call (#9): gemv's FMA body with each column group's walk over k
# started at a trip of its own (Config rotate 1; read_patterns on the H200: rows of 8 KiB read
# 2.6-5.8% faster with the warps' starts rotated) against the rule at m 1-4; float64 checks; then
# the prefill peers with the new rule (resident 4, lazy rescale). Carry build-dev/mtile and
# build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24c build-dev
for dt in bf16 f16 f32; do
  for sh in m=1,n=29,k=2056 m=3,n=4100,k=1000 m=4,n=14336,k=4104; do
    check_case gemv --dtype $dt --shape $sh --config rotate=1
  done
done
for round in 1 2; do
  TAG="r$round "
  for sh in m=1,n=14336,k=4096 m=1,n=4096,k=14336 m=1,n=4096,k=4096 m=2,n=4096,k=4096 m=4,n=4096,k=4096 m=4,n=4096,k=14336; do
    case_ gemv $sh -
    case_ gemv $sh rotate=1
  done
done
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 200 python3 bench/peers_matrix.py \
  --only attention_prefill --json "$OUT/peers_prefill.json" >"$OUT/peers_prefill.md" 2>&1
echo "peers rc $?"
cat "$OUT/peers_prefill.md"
