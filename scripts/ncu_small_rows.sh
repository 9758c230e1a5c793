#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root with a bundle in build-dev
# (scripts/build_device_bundle.sh): Nsight Compute on the post-norm at small row counts, mtile's
# kernel and the Triton peer from the same bench/peers.py run, to place the small-launch gap
# (bench/NOTES.md). One report per (kernel, shape) under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so LD_LIBRARY_PATH=$PWD/build-dev/lib
export PYTHONPATH=$PWD/python:$PWD/bench MTILE_CACHE_DIR=/tmp/mtile-cache
sections=(--section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats
  --section SchedulerStats --section MemoryWorkloadAnalysis)
for shape in ${SHAPES:-1x4096 256x4096}; do
  for kernel in rms_norm_residual_bf16 _post_kernel; do
    ncu --clock-control none --kernel-name "regex:^${kernel}" --launch-skip 5 --launch-count 1 "${sections[@]}" \
      python3 bench/peers.py --only "post:$shape" --runs 10 >"$OUT/ncu_${kernel}_${shape}.txt" 2>&1
    grep -E "Duration|Elapsed Cycles|Registers Per|Achieved Occupancy|Stall|Warp Cycles Per Issued|Issued Warp|DRAM Throughput|Block Size|Grid Size" \
      "$OUT/ncu_${kernel}_${shape}.txt" | sed "s/^/${kernel} ${shape}: /"
  done
done
