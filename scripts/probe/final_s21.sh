# Twenty-first session, last call: scripts/gpu_check.sh on the session's tree, then one run of the
# norm peers (bench/peers.py) for the pre-norm's few-row cells. Carry build-dev whole.
set -uo pipefail
OUT=${OUT:-/tmp/out}
bash scripts/gpu_check.sh 2>&1 | tail -45
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
t0=$SECONDS
timeout 170 python3 bench/peers.py --json "$OUT/peers-1.json" >"$OUT/peers-1.md" 2>"$OUT/peers-1.err"
echo "peers rc $? $((SECONDS - t0)) s"
cat "$OUT/peers-1.md"
