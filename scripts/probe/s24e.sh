#!/usr/bin/env bash
# Twenty-fourth session, fifth call (#9): gemv's FMA body at k 14336 (rows of 28 KiB, 90% of copy)
# with a column's row split between 2 or 4 simdgroups (ksplit; read_patterns: rows of 8 KiB a warp
# read 93.5% of copy, 64 KiB 87-89%), with and without rotate. Carry build-dev/mtile and
# build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24e build-dev
check_case gemv --dtype bf16 --shape m=1,n=4100,k=14344 --config ksplit=4 --config rotate=1
for round in 1 2; do
  TAG="r$round "
  for sh in m=1,n=4096,k=14336 m=2,n=4096,k=14336; do
    case_ gemv $sh -
    case_ gemv $sh ksplit=2
    case_ gemv $sh ksplit=4
    case_ gemv $sh ksplit=4,rotate=1
    case_ gemv $sh ksplit=2,rotate=1
  done
done
TAG=
case_ gemv m=4,n=4096,k=14336 ksplit=4
case_ gemv m=4,n=4096,k=14336 ksplit=4,cols=1
case_ gemv m=1,n=14336,k=4096 ksplit=4,cols=1
cat "$log"
