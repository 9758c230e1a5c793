#!/usr/bin/env bash
# Device probe (#10, not CI): scripts/probe/flush.sh
set -uo pipefail
cd "$(dirname "$0")"
M=${M:-../../build-dev/mtile}
export LD_LIBRARY_PATH=$PWD/../../build-dev/lib
for shape in "4096 7168" "4096 5120" "2048 16384"; do
  set -- $shape
  $M emit rms_norm_residual --target cuda --dtype bf16 --shape rows=$1,n=$2 > raw.cu
  tpg=$(head -1 raw.cu | sed 's/.*threads=\([0-9]*\).*/\1/')
  python3 transform.py rms_norm_residual > /dev/null
  printf "#define ROWS %s\n#define N %s\n#define TPG %s\n#define KLABEL \"%s\"\n#define KARGS %s\n" $1 $2 $tpg rms_norm_residual "x, res, w, out, eps, n" > params.h
  /usr/local/cuda/bin/nvcc -O3 -std=c++17 -arch=sm_90a -o flushprobe flush.cu 2>&1 | grep -v Warning | head
  ./flushprobe
done 2>&1 | tee $OUT/flush.txt
