#!/usr/bin/env bash
# Twenty-third session, second call (#9): attention_decode's tensor-core body with its buffers
# filled by tile copies (Config tma 1: thread 0 copies each block of K and V as boxes of a [d, seq,
# batch * kv_heads] view, full / empty mbarriers, no barrier in the loop) against the rule at the
# shapes where the decode trails SDPA; float64 checks and compute-sanitizer first. Carry
# build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s23b build-dev
M=mma=1,tma=1
for dt in bf16 f16; do
  check_case attention_decode --dtype $dt --shape batch=3,heads=8,kv_heads=2,seq=300,d=64 \
    --config mma=1 --config tma=1 --config stages=4 --config threads=64 --config splits=3
  check_case attention_decode --dtype $dt --shape batch=2,heads=32,kv_heads=8,seq=2001,d=128 \
    --config mma=1 --config tma=1 --config stages=3 --config threads=128 --config splits=2
  check_case attention_decode --dtype $dt --shape batch=2,heads=16,kv_heads=1,seq=1,d=256 \
    --config mma=1 --config tma=1 --config stages=2 --config threads=128
done
SH=batch=2,heads=32,kv_heads=8,seq=1000,d=128
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool build-dev/mtile run attention_decode --backend cuda --shape $SH \
    --config mma=1 --config tma=1 --config stages=3 --config threads=128 --config splits=2 2>&1 | tail -2 >>"$log"
done
A=heads=32,kv_heads=8,d=128
for round in 1 2; do
  TAG="r$round "
  for b in 32 64; do
    case_ attention_decode batch=$b,seq=4096,$A -
    case_ attention_decode batch=$b,seq=4096,$A $M,threads=128,stages=2,splits=1
    case_ attention_decode batch=$b,seq=4096,$A $M,threads=128,stages=3,splits=1
  done
  case_ attention_decode batch=8,seq=32768,$A -
  case_ attention_decode batch=8,seq=32768,$A $M,threads=128,stages=3,splits=4
  case_ attention_decode batch=1,seq=32768,$A -
  case_ attention_decode batch=1,seq=32768,$A $M,threads=128,stages=3,splits=32
  case_ attention_decode batch=8,seq=4096,$A -
  case_ attention_decode batch=8,seq=4096,$A $M,threads=128,stages=3,splits=4
done
TAG=
for b in 32 64; do
  case_ attention_decode batch=$b,seq=4096,$A $M,threads=64,stages=4,splits=1
  case_ attention_decode batch=$b,seq=4096,$A $M,threads=128,bn=32,stages=2,splits=1
done
case_ attention_decode batch=8,seq=32768,$A $M,threads=128,stages=2,splits=4
case_ attention_decode batch=8,seq=32768,$A $M,threads=128,stages=4,splits=2
case_ attention_decode batch=8,seq=32768,$A $M,threads=64,stages=4,splits=8
case_ attention_decode batch=1,seq=32768,$A $M,threads=128,stages=2,splits=32
case_ attention_decode batch=1,seq=32768,$A $M,threads=128,stages=4,splits=16
case_ attention_decode batch=1,seq=4096,$A -
case_ attention_decode batch=1,seq=4096,$A $M,threads=128,stages=2,splits=16
case_ attention_decode batch=8,seq=4096,$A $M,threads=128,stages=2,splits=4
case_ attention_decode batch=8,seq=4096,$A $M,threads=64,stages=4,splits=8
cat "$log"
