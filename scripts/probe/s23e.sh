#!/usr/bin/env bash
# Twenty-third session, sixth call (#9): gemv with w and x by tile copies (Config tma 1, gemv_tiles)
# checked in bf16 / f16 at odd shapes and under memcheck / racecheck, then timed against the rule
# at the decode batch's shapes. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-50}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s23e build-dev
T="--config mma=1 --config tma=1"
for dt in bf16 f16; do
  check_case gemv --dtype $dt --shape m=8,n=29,k=2056 $T --config ksplit=4 --config stages=3
  check_case gemv --dtype $dt --shape m=5,n=4100,k=1000 $T --config ksplit=2 --config stages=4
  check_case gemv --dtype $dt --shape m=1,n=4096,k=14336 $T --config ksplit=4 --config stages=4
done
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run gemv --backend cuda \
    --shape m=8,n=67,k=4104 $T --config ksplit=4 --config stages=3 --reps 1 2>&1 | tail -2 >>"$log"
done
M=mma=1,tma=1
for round in 1 2; do
  TAG="r$round "
  for sh in m=8,n=4096,k=14336 m=8,n=4096,k=4096 m=8,n=14336,k=4096; do
    case_ gemv $sh -
    case_ gemv $sh $M,ksplit=4,stages=4
    case_ gemv $sh $M,ksplit=4,stages=6
    case_ gemv $sh $M,ksplit=8,stages=3
  done
done
TAG=
for sh in m=8,n=4096,k=14336 m=8,n=4096,k=4096; do
  case_ gemv $sh $M,ksplit=2,stages=8
  case_ gemv $sh $M,ksplit=4,stages=3
  case_ gemv $sh $M,ksplit=16,stages=2
done
for sh in m=1,n=4096,k=14336 m=4,n=4096,k=14336 m=1,n=14336,k=4096 m=1,n=4096,k=4096; do
  case_ gemv $sh -
  case_ gemv $sh $M,ksplit=4,stages=4
done
cat "$log"
