# attention_decode's tensor-core body with K and V through `stages` buffers (Config mma 1, stages
# >= 2; kernels/attention/decode_mma.hpp; written in the nineteenth session after the device time
# was spent): CUDA agreement and compute-sanitizer first, then `mtile bench` of the rule against it
# where the single-buffered mma body lost (bench/NOTES.md nineteenth session, item 6): 150
# registers; threads 96 (3 simdgroups, 60 KiB at stages 2: three threadgroups an SM) or 128 (80
# KiB: two). If it wins, widen the rule's mma condition. Last, the rule's own mma body (its empty
# rows' softmax skipped, item 9) and the same with stages 2. Carry build-dev.
set -uo pipefail
REPS=50
. "$(dirname "$0")/bench_case.sh"
sweep_begin decode_mma_stages build-dev
run() { check_case attention_decode "$@"; }
for t in bf16 f16; do
  run --dtype $t --shape batch=8,heads=32,kv_heads=8,seq=4096,d=128 --config mma=1 --config threads=96 --config stages=2 --config splits=6
  run --dtype $t --shape batch=2,heads=16,kv_heads=2,seq=777,d=64 --config mma=1 --config threads=128 --config stages=3 --config splits=5
  run --dtype $t --shape batch=1,heads=16,kv_heads=1,seq=300,d=96 --config mma=1 --config threads=64 --config stages=4 --config splits=3
done
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run attention_decode --backend cuda --dtype bf16 \
    --shape batch=1,heads=32,kv_heads=8,seq=2000,d=128 --config mma=1 --config threads=96 --config stages=2 \
    --config splits=6 --reps 1 >"$OUT/san.log" 2>&1
  echo "[sanitizer $tool] rc $? $(tail -1 "$OUT/san.log")" >>"$log"
done
ab() {  # ab SHAPE SPLITS_AT_96 SPLITS_AT_128
  case_ attention_decode "$1" -
  case_ attention_decode "$1" mma=1,threads=96,stages=2,splits=$2
  case_ attention_decode "$1" mma=1,threads=96,stages=3,splits=$2
  case_ attention_decode "$1" mma=1,threads=128,stages=2,splits=$3
}
ab batch=8,heads=32,kv_heads=8,seq=4096,d=128 6 4
ab batch=32,heads=32,kv_heads=8,seq=4096,d=128 1 1
ab batch=64,heads=32,kv_heads=8,seq=4096,d=128 1 1
ab batch=1,heads=32,kv_heads=8,seq=32768,d=128 48 32
ab batch=8,heads=32,kv_heads=8,seq=32768,d=128 6 4
ab batch=4,heads=32,kv_heads=8,seq=4096,d=128 12 8
# The rule's mma body with the empty rows' softmax skipped (NOTES nineteenth, item 9) where the
# nineteenth session timed it without: b1 s4096 12.86-12.93, b2 s4096 16.45, b1 s16384 25.02 us.
for s in 1,4096 2,4096 1,16384; do
  shape=batch=${s%,*},heads=32,kv_heads=8,seq=${s#*,},d=128
  case_ attention_decode $shape -
  case_ attention_decode $shape stages=2
done
cat "$log"
