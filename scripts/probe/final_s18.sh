# Eighteenth session (bench/NOTES.md): the norm rule's two chunks a thread for every form, on the
# H200: each RMS norm kernel in three dtypes at rows that fill the device (rows of 4096 and 2048,
# the new path), under compute-sanitizer too, `mtile test --backend cuda --filter norm`; then the
# pre-norm's long rows with a few Configs besides the rule's. Carry build-dev.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=100
. "$(dirname "$0")/bench_case.sh"
sweep_begin final_s18 build-dev
for k in rms_norm_residual add_rms_norm add_rms_norm_unrounded gemma_add_rms_norm gemma_rms_norm rms_norm \
  mt_rms_norm_wide add_rms_norm_quant_fp8; do
  for t in bf16 f16 f32; do
    for s in rows=1000,n=4096 rows=300,n=2048; do
      echo "[run $k $t $s] $(build-dev/mtile run $k --backend cuda --dtype $t --shape $s 2>&1 | grep -E 'PASS|FAIL|rror' | head -2 | tr '\n' ' ')" >>"$log"
    done
  done
done
for tool in memcheck racecheck; do
  for c in rms_norm_residual:rows=200,n=4096 add_rms_norm:rows=200,n=2048; do
    compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run ${c%%:*} --backend cuda --dtype bf16 \
      --shape ${c#*:} --reps 1 >"$OUT/san.log" 2>&1
    echo "[sanitizer $tool $c] rc $? $(tail -1 "$OUT/san.log")" >>"$log"
  done
done
build-dev/mtile test --backend cuda --filter norm >"$OUT/test_norm.log" 2>&1
echo "[mtile test --backend cuda --filter norm] rc $? $(tail -1 "$OUT/test_norm.log")" >>"$log"
for round in 1 2; do
  for c in - threads=512,chunks=0 threads=512,chunks=4,hold=0 threads=1024,chunks=2,hold=0; do
    TAG="$round " case_ add_rms_norm rows=2048,n=16384 $c
  done
  for c in - threads=256,chunks=0 threads=1024,chunks=0; do
    TAG="$round " case_ add_rms_norm rows=4096,n=8192 $c
  done
done
cat "$log"
