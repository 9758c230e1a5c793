#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root, with the CLI and the C ABI of
# build-dev carried (scripts/build_device_bundle.sh): the matrix kernels' CUDA tests, a Config
# sweep of gemm through `mtile bench` (checked against float64 first), and bench/peers_matrix.py
# against cuBLAS and SDPA. Logs under $OUT. STEPS (test,sweep,peers,ncu) picks the steps; SWEEPS
# is the sweep: "KERNEL|SHAPE|CONFIG ..." entries separated by ';' (CONFIG "-" is the rule's);
# ONLY is peers_matrix.py's --only.
set -uo pipefail
OUT=${OUT:-/tmp/mtile-matrix-out}
mkdir -p "$OUT"
B=${B:-build-dev}
STEPS=${STEPS:-test,sweep,peers}
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-} MTILE_CACHE_DIR=/tmp/mtile-cache
export MTILE_LIBRARY=$PWD/$B/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
has() { [[ ",$STEPS," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv >"$OUT/machine.txt" 2>&1
if has test; then
  "$B/mtile" test --backend cuda --filter "${FILTER:-gemm|attention_prefill|example_mma}" >"$OUT/test.log" 2>&1
  echo "test rc=$?: $(tail -1 "$OUT/test.log")"
fi
if has sweep; then
  IFS=';' read -ra sweeps <<<"${SWEEPS:-gemm|m=4096,n=4096,k=2048,act=0|-}"
  for entry in "${sweeps[@]}"; do
    IFS='|' read -r kernel shape configs <<<"$entry"
    B=$B bash scripts/bench_sweep.sh "$kernel" "$shape" "$configs" | tee -a "$OUT/sweep.log"
  done
fi
if has peers; then
  python3 bench/peers_matrix.py --only "${ONLY:-gemm,attention_prefill}" --json "$OUT/peers_matrix.json" \
    >"$OUT/peers_matrix.log" 2>&1
  echo "peers rc=$?"
  cat "$OUT/peers_matrix.log"
fi
if has ncu; then
  ncu --clock-control none --kernel-name regex:^gemm_bf16 --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
    --section ComputeWorkloadAnalysis --section InstructionStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
    python3 bench/peers_matrix.py --only gemm --runs 3 >"$OUT/ncu_gemm.txt" 2>&1
  grep -vE "^==PROF==|^\s*$|----" "$OUT/ncu_gemm.txt" | tail -120
fi
