# Seventeenth session (bench/NOTES.md): on the H200, attention_prefill with exp2_ftz (build-dev's
# library) against exp2 (build-dev/base/libmtile_c.so.xz: this tree with exp2 in the prefill's
# softmax) through bench/peers_matrix.py, alternated twice; then the matrix peers and the norm
# peers twice with their per-cell medians. Carry build-dev.
set -uo pipefail
. "$(dirname "$0")/bench_case.sh"
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/base
xz -dc build-dev/base/libmtile_c.so.xz >/tmp/base/libmtile_c.so
cp build-dev/lib/_launcher.abi3.so /tmp/base/
export LD_LIBRARY_PATH=$PWD/build-dev/lib:${LD_LIBRARY_PATH:-} PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
log=$OUT/second_s17.txt
: >"$log"
for round in 1 2; do
  for lib in ftz:$PWD/build-dev/lib base:/tmp/base; do
    MTILE_LIBRARY=${lib#*:}/libmtile_c.so timeout 120 python3 bench/peers_matrix.py --only attention_prefill \
      --runs 20 >"$OUT/pf.md" 2>&1
    echo "rc $? ${lib%%:*}" >>"$log"; grep prefill "$OUT/pf.md" | sed "s/^/[${lib%%:*} $round] /" >>"$log"
  done
done
cat "$log"
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so
t0=$SECONDS
timeout 200 python3 bench/peers_matrix.py --json "$OUT/peers_matrix.json" >"$OUT/peers_matrix.md" 2>"$OUT/peers_matrix.err"
echo "peers_matrix rc $? $((SECONDS - t0)) s"; cat "$OUT/peers_matrix.md"; tail -3 "$OUT/peers_matrix.err"
norm_peers_twice
