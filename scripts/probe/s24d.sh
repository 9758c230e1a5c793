#!/usr/bin/env bash
# Twenty-fourth session, fourth call (#9): gemv_tiles (m 5-8) with each column group's steps
# started at a step of its own (Config rotate 1) against the rule; the prefill's tile-copy body in
# bigger threadgroups at two an SM (two warpgroups, or blocks of 128 keys) against the rule's four
# of one warpgroup. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24d build-dev
for dt in bf16 f16; do
  check_case gemv --dtype $dt --shape m=7,n=14336,k=4104 --config rotate=1
  check_case gemv --dtype $dt --shape m=8,n=70,k=1000 --config rotate=1
done
for round in 1 2; do
  TAG="r$round "
  for sh in m=8,n=4096,k=4096 m=8,n=4096,k=14336 m=8,n=14336,k=4096; do
    case_ gemv $sh -
    case_ gemv $sh rotate=1
  done
done
TAG=
REPS=30
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 -
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 warps=8,resident=2
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 bn=128,resident=2
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 bn=128,resident=0
cat "$log"
