#!/usr/bin/env bash
# Twenty-fifth session, first call (#9): where attention_decode's small-batch time goes beyond a
# plain read. (1) The merge: b32 s1024 reads the same 128 MiB in the same 256 threadgroups of 1024
# rows as b1 s32768 (32 splits) and b8 s4096 (4 splits), with one split and no merge. (2) The
# fixed cost: b1 at 32 splits of the tile-copy body from 4096 to 32768 rows. (3) Four threadgroups
# an SM: 64 threads (two simdgroups, blocks of 32 rows, 48 KiB of buffers) at twice the splits.
# Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s25a build-dev
H=heads=32,kv_heads=8,d=128
T=mma=1,stages=3,tma=1
for r in 1 2; do
  case_ attention_decode batch=1,seq=32768,$H -
  case_ attention_decode batch=8,seq=4096,$H -
  case_ attention_decode batch=32,seq=1024,$H -
  case_ attention_decode batch=32,seq=1024,$H $T,splits=1
done
for s in 4096 8192 16384 32768; do case_ attention_decode batch=1,seq=$s,$H $T,splits=32; done
case_ attention_decode batch=1,seq=4096,$H -
for c in splits=32,threads=64,stages=3 splits=64,threads=64,stages=3 splits=66,threads=64,stages=3 \
  splits=48,threads=64,stages=4; do
  case_ attention_decode batch=1,seq=32768,$H mma=1,tma=1,$c
done
for c in splits=8,threads=64 splits=4,threads=64; do case_ attention_decode batch=8,seq=4096,$H $T,$c; done
case_ attention_decode batch=32,seq=1024,$H $T,splits=2,threads=64
case_ attention_decode batch=32,seq=1024,$H $T,splits=1,threads=64
cat "$log"
