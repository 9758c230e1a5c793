#!/usr/bin/env bash
# Device probe (#10, not CI): scripts/probe/run.sh; writes $OUT/probe.txt (README.md)
set -uo pipefail
cd "$(dirname "$0")"
M=${M:-../../build-dev/mtile}
export LD_LIBRARY_PATH=$PWD/../../build-dev/lib
probe() {  # kernel rows n bytes-factor args [--config ...]
  local k=$1 rows=$2 n=$3 f=$4 a=$5
  shift 5
  $M emit $k --target cuda --dtype bf16 --shape rows=$rows,n=$n "$@" > raw.cu || return
  head -1 raw.cu
  tpg=$(head -1 raw.cu | sed 's/.*threads=\([0-9]*\).*/\1/')
  python3 transform.py $k
  printf "#define ROWS %s\n#define N %s\n#define TPG %s\n#define KLABEL \"%s\"\n#define KBYTES %s\n#define KARGS %s\n" $rows $n $tpg $k $f "$a" > params.h
  /usr/local/cuda/bin/nvcc -O3 -std=c++17 -arch=sm_90a -o probe harness.cu \
    2>&1 | grep -v Warning | head -20
  ./probe
}
{
probe rms_norm_residual 4096 7168 3 "x, res, w, out, eps, n"
probe rms_norm_residual 4096 7168 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=512
probe rms_norm_residual 4096 7168 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=1024
probe rms_norm_residual 4096 5120 3 "x, res, w, out, eps, n"
probe rms_norm_residual 4096 5120 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=512
probe rms_norm_residual 4096 8192 3 "x, res, w, out, eps, n"
probe rms_norm_residual 4096 8192 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=512
probe rms_norm_residual 2048 16384 3 "x, res, w, out, eps, n"
probe rms_norm_residual 2048 16384 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=512
probe rms_norm_residual 2048 16384 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=1024
probe rms_norm_residual 16384 4096 3 "x, res, w, out, eps, n"
probe rms_norm_residual 16384 4096 3 "x, res, w, out, eps, n" --config chunks=0 --config threads=512
probe rms_norm 4096 7168 2 "x, w, out, 1e-6f, n"
probe rms_norm 4096 7168 2 "x, w, out, 1e-6f, n" --config chunks=0 --config threads=512
} 2>&1 | tee $OUT/probe.txt
