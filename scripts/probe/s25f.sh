#!/usr/bin/env bash
# Twenty-fifth session, sixth call (#9): attention_decode's tile-copy body with two buffers (one
# block ahead: a shorter tail of computing after the last block lands, s25e.sh) against the
# rule's three, in turns. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s25f build-dev
H=heads=32,kv_heads=8,d=128
for r in 1 2; do
  for shape in batch=1,seq=32768 batch=8,seq=4096 batch=32,seq=1024 batch=2,seq=16384 batch=32,seq=4096; do
    case_ attention_decode $shape,$H -
    case_ attention_decode $shape,$H stages=2
  done
done
cat "$log"
