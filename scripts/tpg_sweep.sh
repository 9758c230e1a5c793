#!/usr/bin/env bash
# Device experiment: achieved bandwidth of a row kernel across threadgroup sizes (the contract
# still checks each). Usage: scripts/tpg_sweep.sh KERNEL "ROWSxN ..." "TPG ..."
set -uo pipefail
B=${B:-build-dev}
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-}
kernel=$1
for shape in $2; do
  rows=${shape%x*}; n=${shape#*x}
  for tpg in $3; do
    line=$("$B/mtile" run "$kernel" --backend cuda --dtype bf16 --shape "rows=$rows,n=$n" --tpg "$tpg" --reps 50 2>&1 |
      grep -E "^time|^result|error" | tr '\n' ' ')
    printf '%-22s %-12s tpg %-5s %s\n' "$kernel" "$shape" "$tpg" "$line"
  done
done
