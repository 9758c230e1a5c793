#!/usr/bin/env bash
# Twenty-second session, fourth call (#9): the gemm rule with tile copies (TMA) on the H200:
# `mtile test --backend cuda` of the gemm kernels, float64 checks at edge shapes, memcheck, the
# rule against two variants, and bench/peers_matrix.py --only gemm twice. Carry build-dev/mtile
# and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-30}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s22d build-dev
build-dev/mtile test --backend cuda --filter '^gemm' 2>&1 | tail -4 >>"$log"
for dt in bf16 f16; do
  for sh in m=65,n=8,k=8,act=1 m=130,n=70,k=64,act=0 m=1000,n=1000,k=1000,act=2 m=4096,n=4096,k=512,act=0; do
    check_case gemm --dtype $dt --shape $sh
  done
  check_case gemm_residual --dtype $dt --shape m=300,n=520,k=264
done
timeout 120 compute-sanitizer --tool memcheck build-dev/mtile run gemm --backend cuda --shape m=1000,n=1000,k=1000,act=0 \
  2>&1 | tail -2 >>"$log"
for sh in m=4096,n=4096,k=4096 m=1024,n=4096,k=4096 m=512,n=4096,k=4096 m=256,n=4096,k=4096 m=2048,n=4096,k=4096 \
  m=8192,n=4096,k=14336; do
  case_ gemm $sh,act=0 -
done
for sh in m=4096,n=4096,k=4096 m=1024,n=4096,k=4096; do
  case_ gemm $sh,act=0 stages=4,pending=0
  case_ gemm $sh,act=0 stages=2,pending=0
done
case_ gemm m=512,n=4096,k=4096,act=0 stages=4,pending=0
case_ gemm m=512,n=4096,k=4096,act=0 stages=3,pending=0
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python
for i in 1 2; do
  timeout 150 python3 bench/peers_matrix.py --only gemm --json "$OUT/peers_gemm_$i.json" >"$OUT/peers_gemm_$i.md" 2>&1
  echo "peers $i rc $?" >>"$log"
  cat "$OUT/peers_gemm_$i.md" >>"$log"
done
cat "$log"
