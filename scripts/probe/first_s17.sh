# Seventeenth session (bench/NOTES.md): the first call on the H200. gpu_check (logs tarred: the
# tool returns 8 files), then attention_prefill with exp2_ftz (build-dev/mtile) against exp2
# (build-dev/mtile_base.xz, this tree with exp2 in the prefill's softmax) at b1 / b8 s4096,
# alternated, then the matrix peers. Carry build-dev.
set -uo pipefail
OUT=${OUT:-/tmp/out}
OUT=/tmp/gc bash scripts/gpu_check.sh >"$OUT/gpu_check.txt" 2>&1
echo "gpu_check rc $?"; tail -32 "$OUT/gpu_check.txt"
tar czf "$OUT/gc.tgz" -C /tmp gc
xz -dc build-dev/mtile_base.xz >/tmp/mtile_base && chmod +x /tmp/mtile_base
export LD_LIBRARY_PATH=$PWD/build-dev/lib:${LD_LIBRARY_PATH:-}
log=$OUT/ab_prefill.txt
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader >"$log"
REPS=40
. "$(dirname "$0")/bench_case.sh"
for s in batch=1,heads=32,kv_heads=8,seq=4096,d=128 batch=8,heads=32,kv_heads=8,seq=4096,d=128; do
  for round in 1 2; do
    TAG="ftz " bench_case build-dev/mtile attention_prefill "$s" -
    TAG="exp2 " bench_case /tmp/mtile_base attention_prefill "$s" -
  done
done
cat "$log"
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
t0=$SECONDS
timeout 200 python3 bench/peers_matrix.py --json "$OUT/peers_matrix.json" >"$OUT/peers_matrix.md" 2>"$OUT/peers_matrix.err"
echo "peers_matrix rc $? $((SECONDS - t0)) s"; cat "$OUT/peers_matrix.md"; tail -5 "$OUT/peers_matrix.err"
