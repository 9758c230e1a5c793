# Twenty-second session, last call: scripts/gpu_check.sh on the session's tree (gemm's rule now
# takes tile copies, so its sanitizer steps run them), then bench/peers_matrix.py --only gemm with
# the final rule. Carry build-dev/mtile, build-dev/lib, build-dev/mtile_cuda_figures, build-dev/tests.
set -uo pipefail
OUT=${OUT:-/tmp/out}
bash scripts/gpu_check.sh 2>&1 | tail -45
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
t0=$SECONDS
timeout 150 python3 bench/peers_matrix.py --only gemm --json "$OUT/peers_gemm.json" >"$OUT/peers_gemm.md" 2>&1
echo "peers rc $? $((SECONDS - t0)) s"
cat "$OUT/peers_gemm.md"
