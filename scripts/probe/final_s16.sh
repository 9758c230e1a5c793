# Sixteenth session (bench/NOTES.md): the held long rows of the plain norm at the sizes the last
# sweep did not time with the final rule, then the norm peers twice and their per-cell medians.
# Carry build-dev.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/build-dev/lib:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/out}
log=$OUT/final_s16.txt
. "$(dirname "$0")/bench_case.sh"
case_() { bench_case build-dev/mtile "$@"; }  # kernel shape config
nvidia-smi --query-gpu=name --format=csv,noheader >"$log"
for s in rows=4096,n=4104:256 rows=4096,n=12288:768 rows=1056,n=8192:512 rows=4096,n=7168:448; do
  case_ rms_norm "${s%%:*}" -
  case_ rms_norm "${s%%:*}" "chunks=0,threads=${s##*:}"
done
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
for i in 1 2; do
  t0=$SECONDS
  python3 bench/peers.py --json "$OUT/peers-$i.json" >"$OUT/peers-$i.md" 2>"$OUT/peers-$i.err"
  echo "peers $i rc $? $((SECONDS - t0)) s" >>"$log"
done
python3 bench/peers_median.py "$OUT"/peers-1.json "$OUT"/peers-2.json --json "$OUT/peers_median.json" >"$OUT/peers_median.md" 2>&1
cat "$log"; cat "$OUT/peers_median.md"
