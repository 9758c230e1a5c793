# Seventeenth session (bench/NOTES.md): attention_decode with own_copies in its rule, on the H200:
# the staged decode under compute-sanitizer, its CUDA agreement tests, then the matrix peers.
# Carry build-dev.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=$PWD/build-dev/lib:${LD_LIBRARY_PATH:-} MTILE_CACHE_DIR=/tmp/mtile-cache
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run attention_decode --backend cuda --dtype bf16 \
    --shape batch=1,heads=32,kv_heads=8,seq=8192,d=128 --reps 1 >"$OUT/san_$tool.log" 2>&1
  echo "sanitizer $tool rc $?"; tail -2 "$OUT/san_$tool.log"
done
build-dev/mtile test --backend cuda --filter attention_decode 2>&1 | tail -2
build-dev/mtile run attention_decode --backend cuda --dtype bf16 --shape batch=32,heads=32,kv_heads=8,seq=4096,d=128 2>&1 | tail -2
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python
timeout 100 python3 bench/peers_matrix.py --json "$OUT/peers_matrix.json" >"$OUT/peers_matrix.md" 2>"$OUT/peers_matrix.err"
echo "peers_matrix rc $?"; cat "$OUT/peers_matrix.md"; tail -3 "$OUT/peers_matrix.err"
