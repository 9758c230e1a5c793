#!/usr/bin/env bash
# Device experiment: `mtile bench` of each kernel x shape x Config (graph replays for small
# launches, L2-flushed events for the others; each case checked against the float64 reference
# first), one table line each. The empty Config "-" is the dispatch rule's own choice.
# Usage (GPU machine, build-dev carried): scripts/bench_sweep.sh "KERNEL ..." "rows=R,n=N ..." "CONFIG ..."
#   e.g. scripts/bench_sweep.sh "add_rms_norm" "rows=32,n=4096" "- threads=256 threads=256,hold=0"
# TIMING=graph|events times every case so (default auto: by its size; `mtile bench --timing`).
set -uo pipefail
B=${B:-build-dev}
TIMING=${TIMING:-auto}
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-}
for kernel in $1; do
  for shape in $2; do
    for config in $3; do
      args=()
      if [ "$config" != "-" ]; then
        IFS=, read -ra parts <<<"$config"
        for p in "${parts[@]}"; do args+=(--config "$p"); done
      fi
      "$B/mtile" bench --backend cuda --filter "^$kernel\$" --shape "$shape" "${args[@]}" --reps 100 --timing "$TIMING" 2>/dev/null |
        grep -E "^$kernel " | sed "s/^/[$config] /"
    done
  done
done
