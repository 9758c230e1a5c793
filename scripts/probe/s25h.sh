#!/usr/bin/env bash
# Twenty-fifth session, last sweep (#9): gemv_tiles at ksplit 4 (four simdgroups a column group,
# where column groups pass two an SM) with two buffers against the rule's four, after s25g.sh's one
# shape (8 x 14336 x 4096: 32.3 -> 31.6 us). Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-30}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s25h build-dev
for shape in m=8,n=14336,k=4096 m=8,n=28672,k=4096 m=6,n=14336,k=4096 m=8,n=6144,k=4096 m=8,n=128256,k=4096; do
  case_ gemv $shape -
  case_ gemv $shape stages=2
  case_ gemv $shape -
  case_ gemv $shape stages=2
done
cat "$log"
