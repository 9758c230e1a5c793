#!/usr/bin/env bash
# Twenty-second session, first call (#10): torch.compile's Triton for the wide post-norms and
# Triton's held pre-norm at 2048 x 16384, their SASS, and Nsight Compute of each against mtile's
# kernels of the same shapes. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so
export PYTHONPATH=$PWD/python:$PWD/bench MTILE_CACHE_DIR=/tmp/mtile-cache
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor TRITON_CACHE_DIR=/tmp/triton
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
PROBE_SHAPES="post:4096:7168 post:4096:8192 post:2048:16384" TORCH_LOGS=output_code \
  python3 scripts/probe/inductor.py >"$OUT/inductor.log" 2>&1
echo "inductor rc $?"
cat >/tmp/s22_peers.py <<'PY'
import sys, torch, peers, peers_triton
for name, rows, n in (("post", 4096, 7168), ("post", 4096, 8192), ("post", 2048, 16384), ("pre", 2048, 16384)):
    x, r = (torch.randn(rows, n, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    if name == "post":
        c = torch.compile(peers.eager_post, dynamic=False)
        for _ in range(3): c(x, r, w)
    else:
        for _ in range(3): peers_triton.pre(x, r, w, 1e-6)
    torch.cuda.synchronize()
PY
python3 /tmp/s22_peers.py >/dev/null 2>&1
S="--section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats"
timeout 200 ncu --clock-control none $S --kernel-name regex:"triton|_pre_kernel" --launch-skip 2 -c 10 python3 /tmp/s22_peers.py >"$OUT/ncu_peers.txt" 2>&1
echo "ncu peers rc $?"
run_ncu() {  # KERNEL SHAPE CONFIG...
  local k=$1 s=$2; shift 2
  local args=(); for c in "$@"; do args+=(--config "$c"); done
  echo "=== $k $s $*"
  build-dev/mtile bench --backend cuda --filter "^$k\$" --shape "$s" "${args[@]}" --reps 3 >/dev/null 2>&1
  timeout 100 ncu --clock-control none $S --kernel-name regex:"$k" --launch-skip 2 -c 1 \
    build-dev/mtile bench --backend cuda --filter "^$k\$" --shape "$s" "${args[@]}" --reps 3 2>&1 | grep -v "^==PROF=="
}
{
run_ncu rms_norm_residual rows=4096,n=7168
run_ncu rms_norm_residual rows=4096,n=8192
run_ncu rms_norm_residual rows=2048,n=16384
run_ncu add_rms_norm rows=2048,n=16384
run_ncu add_rms_norm rows=2048,n=16384 threads=512 chunks=4
} >"$OUT/ncu_mtile.txt" 2>&1
echo "ncu mtile rc $?"
# The Triton kernels' SASS, one file.
for f in $(find /tmp/triton /tmp/inductor -name "*.cubin" 2>/dev/null); do
  echo "##### $f"; cuobjdump -sass "$f" 2>&1
done >"$OUT/triton_sass.txt"
for f in $(find /tmp/triton /tmp/inductor -name "*.ptx" 2>/dev/null); do
  echo "##### $f"; grep -E "^\s*\.(maxntid|reqntid)|ld.global|st.global" "$f" | head -80
done >"$OUT/triton_ptx.txt"
grep -E "^  [a-zA-Z_].*\(|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Size|Grid Size|L2 Hit|Issued Warp Per|No Eligible|Warp Cycles Per Issued" "$OUT/ncu_peers.txt" | head -120
grep -E "^===|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Block Size|Grid Size|L2 Hit|Issued Warp Per|Warp Cycles Per Issued" "$OUT/ncu_mtile.txt"
