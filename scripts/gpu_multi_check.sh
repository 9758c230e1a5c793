#!/usr/bin/env bash
# Runs on a GPU machine of 2 or more GPUs (device tool, kind nvidia-h100-x2) from the repo root,
# with the build carried (scripts/build_device_bundle.sh makes build-dev/). Builds nothing. Logs go
# under $OUT; a summary is printed last. STEPS picks what runs (all four take more than one 600 s
# device call: run the peers in a call of their own).
#   [STEPS=test,filter,figures,peers] scripts/gpu_multi_check.sh [BUILD_DIR]     (default build-dev)
set -uo pipefail
B=${1:-build-dev}
STEPS=,${STEPS:-test,filter,figures,peers},
OUT=${OUT:-/tmp/mtile-gpu-multi-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/$B/lib:${LD_LIBRARY_PATH:-}
export MTILE_CACHE_DIR=/tmp/mtile-cache
export NCCL_NVLS_ENABLE=0  # no NVLink multicast (needs fabric state lent machines may lack)
# NCCL for mtile: the system's libnccl.so.2, else the one torch brings (the nvidia-nccl-cu12 wheel).
if [ -z "${MTILE_NCCL_LIBRARY:-}" ] && ! python3 -c 'import ctypes; ctypes.CDLL("libnccl.so.2")' 2>/dev/null; then
  lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' \
    2>/dev/null)
  [ -f "$lib" ] || lib=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null |
    xargs -r -n1 -I{} find {} -name 'libnccl.so.2' 2>/dev/null | head -1)
  [ -n "$lib" ] && [ -f "$lib" ] && export MTILE_NCCL_LIBRARY=$lib
fi
summary=()
step() {  # step NAME LOG TIMEOUT COMMAND...: runs and records pass/fail
  local name=$1 log=$2 limit=$3
  shift 3
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-34s rc=%-3s %4ss  %s' "$name" "$rc" "$((SECONDS - t0))" "$log")")
  return $rc
}
{
  nvidia-smi
  nvidia-smi topo -m
  echo "MTILE_NCCL_LIBRARY=${MTILE_NCCL_LIBRARY:-(unset: libnccl.so.2)}"
} >"$OUT/machine.txt" 2>&1

want() { [[ $STEPS == *,$1,* ]]; }
want test && step cuda_multi_gpu_test multi_gpu_test.log 300 "$B/tests/cuda_multi_gpu_test"
# The registry's checks of the collective kernels (shapes of more ranks than GPUs fail to open).
want filter && step "mtile test --filter allreduce" mtile_test_allreduce.log 300 \
  "$B/mtile" test --backend cuda --filter allreduce
want figures && step mtile_allreduce_figures allreduce_figures.log 420 \
  "$B/mtile_allreduce_figures" --json "$OUT/allreduce_figures.json"
want peers && step allreduce_peers.py allreduce_peers.log 580 python3 bench/allreduce_peers.py --timeout 270 \
  --mtile-figures "$B/mtile_allreduce_figures" --out-md "$OUT/allreduce_peers.md" --out-json "$OUT/allreduce_peers.json"

echo "==== machine"; grep -E "NVIDIA-SMI|MTILE_NCCL" "$OUT/machine.txt"
show() { [ -f "$OUT/$2" ] && { echo "==== $1"; tail -"$3" "$OUT/$2"; }; }
show cuda_multi_gpu_test multi_gpu_test.log 25
show "mtile test --filter allreduce" mtile_test_allreduce.log 14
show mtile_allreduce_figures allreduce_figures.log 40
show allreduce_peers.py allreduce_peers.log 40
echo "==== summary"; printf '%s\n' "${summary[@]}"
