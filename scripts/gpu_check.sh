#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repo root, with build-dev/ carried from
# scripts/build_device_bundle.sh. Every log goes under $OUT; a summary table is printed last.
# BENCH=1 adds `mtile bench --backend cuda` (long: run it in a device call of its own).
set -uo pipefail
OUT=${OUT:-/tmp/mtile-gpu-out}
mkdir -p "$OUT"
B=build-dev
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-}
export MTILE_CACHE_DIR=/tmp/mtile-cache
rm -rf "$MTILE_CACHE_DIR"
summary=()
step() {  # step NAME LOG COMMAND...: runs and records pass/fail
  local name=$1 log=$2
  shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-34s rc=%-3s %4ss  %s' "$name" "$rc" "$((SECONDS - t0))" "$log")")
  return $rc
}
{ nvidia-smi; cat /etc/os-release; ldd --version | head -1; } >"$OUT/machine.txt" 2>&1

tests="$B/tests/context_test"
for t in "$B"/tests/cuda_*_test; do [ -x "$t" ] && tests="$tests $t"; done
: >"$OUT/gtest.log"
for t in $tests; do
  step "$(basename "$t")" "gtest_$(basename "$t").log" "$t" --gtest_brief=1
  tail -3 "$OUT/gtest_$(basename "$t").log" >>"$OUT/gtest.log"
done
step "mtile test --backend cuda" mtile_test_cuda.log "$B/mtile" test --backend cuda
step "mtile run seed bf16 16384x4096" run_seed.log "$B/mtile" run ffai_rms_norm_residual --backend cuda --dtype bf16 --shape rows=16384,n=4096
step "mtile run wide bf16 4096x8192" run_wide.log "$B/mtile" run mt_rms_norm_wide --backend cuda --dtype bf16 --shape rows=4096,n=8192
step "mtile run add_rms_norm (in place)" run_inplace.log "$B/mtile" run add_rms_norm --backend cuda --dtype bf16 --shape rows=4096,n=7168
for tool in memcheck racecheck; do
  step "compute-sanitizer $tool seed" "sanitizer_$tool.log" compute-sanitizer --tool "$tool" --error-exitcode 9 \
    "$B/mtile" run ffai_rms_norm_residual --backend cuda --dtype bf16 --shape rows=64,n=4096 --reps 1
done
# The strided norm body (rows past 4096: cache-hinted two passes), then the tensor-core and
# async-copy kernels and the fenced split attention, under the sanitizers too.
for tool in memcheck racecheck; do
  step "compute-sanitizer $tool strided norm" "sanitizer_${tool}_norm.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run add_rms_norm --backend cuda --dtype bf16 --shape rows=64,n=7170 --reps 1
  # The pre-norm held: every chunk whole (few rows), and four chunks with their sums stored after all loads.
  step "compute-sanitizer $tool held pre-norm" "sanitizer_${tool}_pre.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run add_rms_norm --backend cuda --dtype bf16 --shape rows=16,n=4096 --reps 1
  step "compute-sanitizer $tool pre-norm 4 chunks" "sanitizer_${tool}_pre4.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run add_rms_norm --backend cuda --dtype bf16 --shape rows=64,n=16384 \
    --config threads=512 --config chunks=4 --config hold=0 --reps 1
done
for tool in memcheck racecheck; do
  step "compute-sanitizer $tool gemm" "sanitizer_${tool}_gemm.log" compute-sanitizer --tool "$tool" --error-exitcode 9 \
    "$B/mtile" run gemm_bias --backend cuda --dtype bf16 --shape m=130,n=70,k=1000,act=1 --reps 1
  step "compute-sanitizer $tool attention" "sanitizer_${tool}_attention.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run attention_decode --backend cuda --dtype bf16 \
    --shape batch=1,heads=32,kv_heads=8,seq=2000,d=128 --reps 1
  # The rule's decode on sm_90 at 24 sequence-head pairs: tile copies into two buffers, 11 splits
  # (the last one partial), merged by the last threadgroup.
  step "compute-sanitizer $tool attention tile copies" "sanitizer_${tool}_attention_tiles.log" compute-sanitizer \
    --tool "$tool" --error-exitcode 9 "$B/mtile" run attention_decode --backend cuda --dtype bf16 \
    --shape batch=3,heads=32,kv_heads=8,seq=1000,d=128 --reps 1
  # tma 0 stages K and V through the buffers by every thread's cp.async.
  step "compute-sanitizer $tool attention staged" "sanitizer_${tool}_attention_staged.log" compute-sanitizer \
    --tool "$tool" --error-exitcode 9 "$B/mtile" run attention_decode --backend cuda --dtype bf16 \
    --shape batch=1,heads=32,kv_heads=8,seq=8192,d=128 --config tma=0 --reps 1
  step "compute-sanitizer $tool prefill" "sanitizer_${tool}_prefill.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run attention_prefill --backend cuda --dtype bf16 \
    --shape batch=1,heads=4,kv_heads=2,seq=300,d=128 --reps 1
  # gemv's rules: a column a threadgroup with its walk rotated (m 2), tile copies rotated (m 8).
  step "compute-sanitizer $tool gemv" "sanitizer_${tool}_gemv.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run gemv --backend cuda --dtype bf16 --shape m=2,n=4100,k=4104 --reps 1
  step "compute-sanitizer $tool gemv tiles" "sanitizer_${tool}_gemv_tiles.log" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$B/mtile" run gemv --backend cuda --dtype bf16 --shape m=8,n=70,k=4096 --reps 1
done
# The whole bench checks every case against the host's float64 reference first (seconds for the
# decode and matrix kernels): with the rest it passes one 600 s device call, so it runs only when
# asked (BENCH=1), best in a call of its own.
if [ "${BENCH:-0}" = 1 ]; then
  step "mtile bench --backend cuda" bench.log "$B/mtile" bench --backend cuda --out "$OUT/bench.json"
fi
rm -rf "$MTILE_CACHE_DIR"
step "figures (cold cache)" figures_cold.log "$B/mtile_cuda_figures"
step "figures (warm: disk cache)" figures_warm.log "$B/mtile_cuda_figures"

echo "==== gtest tails"; cat "$OUT/gtest.log"
echo "==== mtile test --backend cuda"; tail -4 "$OUT/mtile_test_cuda.log"
echo "==== runs"; cat "$OUT/run_seed.log" "$OUT/run_wide.log" "$OUT/run_inplace.log"
echo "==== sanitizers"; tail -n 2 "$OUT"/sanitizer_*.log
[ -f "$OUT/bench.log" ] && { echo "==== mtile bench"; cat "$OUT/bench.log"; }
echo "==== figures cold"; cat "$OUT/figures_cold.log"
echo "==== figures warm"; head -3 "$OUT/figures_warm.log"
echo "==== summary"; printf '%s\n' "${summary[@]}"
