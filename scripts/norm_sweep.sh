#!/usr/bin/env bash
# Device experiment: the norm kernels' Config space (threads per row: 1, 2 or 4 chunks of 8 a
# thread; hold: residual and weights in registers or read after the reduction) on rows of bf16.
# Each run is checked against the reference; times are device events without an L2 flush.
# Usage (GPU machine, build-dev carried): scripts/norm_sweep.sh KERNEL "ROWSxN ..."
set -uo pipefail
B=${B:-build-dev}
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-}
kernel=$1
round32() { echo $(((($1) + 31) / 32 * 32)); }
for shape in $2; do
  rows=${shape%x*}; n=${shape#*x}
  vectors=$(((n + 7) / 8))
  for per in 1 2 4; do
    threads=$(round32 $(((vectors + per - 1) / per)))
    ((threads > 1024)) && continue
    for hold in 1 0; do
      line=$("$B/mtile" run "$kernel" --backend cuda --dtype bf16 --shape "rows=$rows,n=$n" \
        --config "threads=$threads,hold=$hold" --reps 50 2>&1 | grep -E "^time|^result|rror" | tr '\n' ' ')
      printf '%-18s %-11s threads %-5s hold %s  %s\n' "$kernel" "$shape" "$threads" "$hold" "$line"
    done
  done
done
