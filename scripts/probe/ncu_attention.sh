#!/usr/bin/env bash
# Nsight Compute on attention_decode (or prefill: ARGS="--kernel prefill --batch 1") against torch's
# SDPA at one shape, every launch of scripts/probe/ncu_attention.py (mtile's and torch's kernels,
# after a first rep of warm-up): time, DRAM throughput, occupancy, issue activity, warp stall
# reasons, for placing what separates them (bench/NOTES.md). Carry build-dev; writes $OUT/ncu_*.txt.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so LD_LIBRARY_PATH=$PWD/build-dev/lib
export PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
args=${ARGS:---batch 32 --seq 4096}
tag=$(echo "$args" | tr -d ' -')
python3 scripts/probe/ncu_attention.py $args --reps 1  # compile and cache mtile's kernel outside ncu
ncu --clock-control none --launch-skip 2 --launch-count 12 --section SpeedOfLight --section LaunchStats \
  --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
  python3 scripts/probe/ncu_attention.py $args --reps 3 >"$OUT/ncu_$tag.txt" 2>&1
echo "ncu rc $? ($OUT/ncu_$tag.txt)"
grep -E "^  [a-zA-Z_].*\(|Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issued Warp Per|No Eligible|Warp Cycles Per Issued|Block Size|Grid Size|L2 Hit|Mem Busy|Max Bandwidth" \
  "$OUT/ncu_$tag.txt"
