#!/usr/bin/env bash
# Twenty-fifth session, seventh call (#9): the decode's new two-buffer rule at shapes s25f.sh did
# not time (b8 s32768, b16 s8192, b16 s4096) against three buffers; gemv_tiles with two buffers
# against its rule's three. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s25g build-dev
H=heads=32,kv_heads=8,d=128
for r in 1 2; do
  for shape in batch=8,seq=32768 batch=16,seq=8192 batch=16,seq=4096; do
    case_ attention_decode $shape,$H -
    case_ attention_decode $shape,$H stages=3
  done
  for shape in m=8,n=4096,k=4096 m=8,n=4096,k=14336 m=8,n=14336,k=4096; do
    case_ gemv $shape -
    case_ gemv $shape stages=2
  done
  case_ gemv m=8,n=14336,k=4096 stages=3
done
cat "$log"
