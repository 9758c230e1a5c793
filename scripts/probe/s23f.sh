#!/usr/bin/env bash
# Twenty-third session, last call (#9): gemv's rule on tile copies (gemv_tiles at m > 4 on sm_90):
# every CUDA kernel against the CPU engine (cuda_agreement_test), `mtile test --backend cuda`,
# memcheck / racecheck of the rule's gemv in bf16, then the gemv peers. Carry build-dev/mtile,
# build-dev/lib and build-dev/tests.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=$PWD/build-dev/lib:${LD_LIBRARY_PATH:-}
export MTILE_CACHE_DIR=/tmp/mtile-cache
log=$OUT/s23f.txt
nvidia-smi --query-gpu=name --format=csv,noheader >"$log"
build-dev/tests/cuda_agreement_test --gtest_brief=1 2>&1 | tail -3 >>"$log"
build-dev/mtile test --backend cuda 2>&1 | tail -3 >>"$log"
for sh in m=8,n=67,k=4104 m=5,n=4100,k=1000; do
  for tool in memcheck racecheck; do
    timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run gemv --backend cuda \
      --dtype bf16 --shape $sh --reps 1 2>&1 | grep -E "result|SUMMARY|rror" >>"$log"
    echo "$tool $sh rc $?" >>"$log"
  done
done
for dt in bf16 f16; do
  for sh in m=8,n=29,k=2056 m=7,n=14336,k=4104 m=6,n=4096,k=14336; do
    echo "[run $dt $sh] $(build-dev/mtile run gemv --backend cuda --dtype $dt --shape $sh 2>&1 | grep -E 'config|PASS|FAIL|rror' | tr '\n' ' ')" >>"$log"
  done
done
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 120 python3 bench/peers_matrix.py --only gemv \
  --json "$OUT/peers_gemv.json" >"$OUT/peers_gemv.md" 2>&1
cat "$OUT/peers_gemv.md"
