#!/usr/bin/env bash
# Twenty-second session, third call (#9): gemm's producer body with tile copies (TMA, Config tma 1:
# one thread issues each step's two tiles as cp.async.bulk.tensor) against the rule, checked
# against float64 first; compute-sanitizer on one launch. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-30}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s22c build-dev
T=producers=1,tma=1
for dt in bf16 f16; do
  for sh in m=130,n=70,k=64,act=0 m=200,n=300,k=1000,act=1 m=64,n=256,k=520,act=2 m=1000,n=1000,k=1000,act=0; do
    check_case gemm --dtype $dt --shape $sh --config producers=1 --config tma=1
  done
  check_case gemm_residual --dtype $dt --shape m=300,n=520,k=264 --config producers=1 --config tma=1
  check_case gemm_bias --dtype $dt --shape m=257,n=129,k=136,act=2 --config producers=1 --config tma=1
done
timeout 120 compute-sanitizer --tool memcheck build-dev/mtile run gemm --backend cuda --shape m=200,n=300,k=1000,act=0 \
  --config producers=1 --config tma=1 2>&1 | tail -3 >>"$log"
timeout 120 compute-sanitizer --tool racecheck build-dev/mtile run gemm --backend cuda --shape m=200,n=300,k=1000,act=0 \
  --config producers=1 --config tma=1 2>&1 | tail -3 >>"$log"
for round in 1 2; do
  TAG="r$round "
  for sh in m=4096,n=4096,k=4096 m=8192,n=4096,k=14336 m=1024,n=4096,k=4096 m=512,n=4096,k=4096 m=2048,n=4096,k=4096; do
    case_ gemm $sh,act=0 -
    case_ gemm $sh,act=0 $T
    case_ gemm $sh,act=0 $T,pending=0,stages=3
  done
done
TAG=
for sh in m=4096,n=4096,k=4096 m=1024,n=4096,k=4096; do
  case_ gemm $sh,act=0 $T,bn=128
  case_ gemm $sh,act=0 producers=4
done
cat "$log"
