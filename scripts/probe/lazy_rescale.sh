# attention_prefill's lazy rescale (Config lazy_rescale; kernels/attention/attention_prefill.cpp,
# bench/NOTES.md eighteenth session), written without a GPU: first its agreement with float64 on
# CUDA (both bodies, bf16 and f16, odd lengths, two warpgroups) and under compute-sanitizer, then
# `mtile bench` of the rule's Config against lazy_rescale 1, alternated. Carry build-dev.
set -uo pipefail
REPS=30
. "$(dirname "$0")/bench_case.sh"
sweep_begin lazy_rescale build-dev
run() { check_case attention_prefill "$@"; }
for t in bf16 f16; do
  run --dtype $t --shape batch=1,heads=32,kv_heads=8,seq=1000,d=128 --config lazy_rescale=1
  run --dtype $t --shape batch=2,heads=4,kv_heads=2,seq=333,d=64 --config lazy_rescale=1 --config warps=8
  run --dtype $t --shape batch=1,heads=4,kv_heads=2,seq=300,d=80 --config lazy_rescale=1
  run --dtype $t --shape batch=1,heads=4,kv_heads=2,seq=300,d=128 --config lazy_rescale=1 --config warpgroup=0
done
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run attention_prefill --backend cuda --dtype bf16 \
    --shape batch=1,heads=4,kv_heads=2,seq=300,d=128 --config lazy_rescale=1 --reps 1 >"$OUT/san.log" 2>&1
  echo "[sanitizer $tool] rc $? $(tail -1 "$OUT/san.log")" >>"$log"
done
for round in 1 2; do
  for s in batch=1,heads=32,kv_heads=8,seq=4096,d=128 batch=1,heads=32,kv_heads=8,seq=2048,d=128; do
    for c in - lazy_rescale=1; do TAG="$round " case_ attention_prefill $s $c; done
  done
done
for c in - lazy_rescale=1; do case_ attention_prefill batch=8,heads=32,kv_heads=8,seq=4096,d=128 $c; done
cat "$log"
