#!/usr/bin/env bash
# Twenty-third session, fifth call (#9): gemv's tensor-core body at the decode batch of 8 (the
# peer table's 0.94 and 0.98 cells): loads in flight (unroll) and simdgroups a column group
# (ksplit) against the rule; the prefill's lazy rescale on tile copies at b1 s4096 again. Carry
# build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-50}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s23d build-dev
for round in 1 2; do
  TAG="r$round "
  for sh in m=8,n=4096,k=14336 m=8,n=4096,k=4096; do
    case_ gemv $sh -
    case_ gemv $sh unroll=4
    case_ gemv $sh unroll=4,ksplit=8
    case_ gemv $sh unroll=8,ksplit=8
    case_ gemv $sh unroll=8,ksplit=4
    case_ gemv $sh ksplit=8
  done
done
TAG=
for sh in m=8,n=14336,k=4096 m=1,n=4096,k=14336 m=4,n=4096,k=14336; do
  case_ gemv $sh -
  case_ gemv $sh unroll=4
done
case_ gemv m=8,n=4096,k=14336 unroll=4,ksplit=16
case_ gemv m=8,n=4096,k=14336 unroll=2,ksplit=16,mma=1
for i in 1 2; do
  case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 -
  case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 lazy_rescale=1
done
cat "$log"
