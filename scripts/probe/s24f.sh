#!/usr/bin/env bash
# Twenty-fourth session, sixth call (#9): gemv's FMA body at m 1-3 with a column a threadgroup
# (cols 1, ksplit 4: four simdgroups read a row together, 2 KiB contiguous a step; s24e.sh: 1 x 4096
# x 14336 31.2 -> 29.7 us, 2 x 4096 x 14336 36.3 -> 30.9) against the rule, across n and k. Carry
# build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24f build-dev
for m in 1 2 3; do
  for nk in n=4096,k=4096 n=4096,k=14336 n=14336,k=4096; do
    case_ gemv m=$m,$nk -
    case_ gemv m=$m,$nk cols=1,ksplit=4
  done
done
case_ gemv m=1,n=128256,k=4096 -
case_ gemv m=1,n=128256,k=4096 cols=1,ksplit=4
case_ gemv m=1,n=4096,k=1024 -
case_ gemv m=1,n=4096,k=1024 cols=1,ksplit=4
cat "$log"
