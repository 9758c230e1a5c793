# Twenty-first session, the last device seconds: bench/peers.py twice for the committed norm
# baseline's per-cell medians (bench/peers_median.py, run here). Carry build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
for i in 1 2; do
  timeout 120 python3 bench/peers.py --json "$OUT/peers-$i.json" >"$OUT/peers-$i.md" 2>"$OUT/peers-$i.err"
  echo "peers $i rc $?"
done
