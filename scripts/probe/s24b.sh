#!/usr/bin/env bash
# Twenty-fourth session, second call (#9): attention_prefill's warpgroup body with its registers
# capped for 4 threadgroups an SM (Config resident 4: 128 registers, no spill, where the rule's
# 136 leave 3) against the rule, with and without the lazy rescale; float64 checks; ncu's warp
# states of both at b1 s4096. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-30}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24b build-dev
for dt in bf16 f16; do
  for sh in batch=2,heads=4,kv_heads=2,seq=77,d=128 batch=3,heads=2,kv_heads=1,seq=300,d=64; do
    check_case attention_prefill --dtype $dt --shape $sh --config resident=4
  done
done
for round in 1 2; do
  TAG="r$round "
  for s in 4096 2048; do
    case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=$s,d=128 -
    case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=$s,d=128 resident=4
    case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=$s,d=128 resident=4,lazy_rescale=1
  done
done
TAG=
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 lazy_rescale=1
case_ attention_prefill batch=8,heads=32,kv_heads=8,seq=4096,d=128 -
case_ attention_prefill batch=8,heads=32,kv_heads=8,seq=4096,d=128 resident=4
case_ attention_prefill batch=8,heads=32,kv_heads=8,seq=4096,d=128 resident=4,lazy_rescale=1
cat "$log"
M=gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active
for cfg in "" "--config resident=4"; do
  timeout 150 ncu --metrics $M --section WarpStateStats -k regex:attention_prefill -c 1 build-dev/mtile bench --backend cuda \
    --filter '^attention_prefill$' --shape batch=1,heads=32,kv_heads=8,seq=4096,d=128 $cfg --reps 1 >"$OUT/ncu_prefill${cfg:+_r4}.log" 2>&1
  echo "ncu [$cfg] rc $?"
  grep -E "gpu__time|warps_active|registers_per|occupancy_limit|gmma|issue_active|Stall|stall|Warp Cycles|Issued" "$OUT/ncu_prefill${cfg:+_r4}.log" | head -30
done
