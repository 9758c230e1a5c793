# attention_prefill's producer-warp body (Config producer 1, ahead 0 / 1; kernels/attention/
# attention_prefill.cpp, bench/NOTES.md twentieth session, item 7), written without device time:
# first its agreement with float64 on CUDA (bf16 / f16, odd lengths, GQA, one and two warpgroups,
# 2-4 buffers, d 64-256) and compute-sanitizer, then `mtile bench` of the rule's Config (one
# warpgroup, three threadgroups an SM) against the producer forms, alternated. Carry build-dev.
set -uo pipefail
REPS=30
. "$(dirname "$0")/bench_case.sh"
sweep_begin prefill_producer build-dev
export MTILE_CACHE_DIR=/tmp/mtile-cache
run() { check_case attention_prefill "$@"; }
for t in bf16 f16; do
  for a in 0 1; do
    run --dtype $t --shape batch=1,heads=32,kv_heads=8,seq=1000,d=128 --config producer=1 --config ahead=$a --config warps=8
    run --dtype $t --shape batch=2,heads=4,kv_heads=2,seq=333,d=64 --config producer=1 --config ahead=$a --config stages=3
    run --dtype $t --shape batch=1,heads=2,kv_heads=1,seq=129,d=256 --config producer=1 --config ahead=$a --config bn=32
  done
done
for tool in memcheck racecheck; do
  for a in 0 1; do
    compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run attention_prefill --backend cuda --dtype bf16 \
      --shape batch=1,heads=4,kv_heads=2,seq=300,d=128 --config producer=1 --config ahead=$a --config warps=8 \
      --reps 1 >"$OUT/san.log" 2>&1
    echo "[sanitizer $tool ahead $a] rc $? $(tail -1 "$OUT/san.log")" >>"$log"
  done
done
for round in 1 2; do
  for s in batch=1,heads=32,kv_heads=8,seq=4096,d=128 batch=1,heads=32,kv_heads=8,seq=2048,d=128; do
    for c in - producer=1,warps=8 producer=1,warps=8,ahead=1 producer=1,warps=4 producer=1,warps=4,ahead=1 \
      producer=1,warps=8,stages=3; do
      TAG="$round " case_ attention_prefill $s $c
    done
  done
done
cat "$log"
