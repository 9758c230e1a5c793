#!/usr/bin/env bash
# Twenty-third session, first call (#9): attention_prefill's warpgroup body on tile copies (Config
# tma 1, the rule's now: q, K and V as boxes of a [d, seq, batch * heads] view by thread 0, on
# mbarriers; seq not baked, so the maps' dims are evaluated at launch) against every thread's
# cp.async (tma 0): float64 checks at odd shapes, compute-sanitizer, `mtile bench`, then the
# prefill peers. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-30}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s23a build-dev
for dt in bf16 f16; do
  for sh in batch=2,heads=4,kv_heads=2,seq=77,d=128 batch=3,heads=2,kv_heads=1,seq=300,d=64 \
    batch=1,heads=2,kv_heads=1,seq=65,d=256 batch=1,heads=1,kv_heads=1,seq=1,d=64; do
    check_case attention_prefill --dtype $dt --shape $sh
  done
  check_case attention_prefill --dtype $dt --shape batch=2,heads=4,kv_heads=2,seq=200,d=128 --config warps=8
done
SH=batch=2,heads=4,kv_heads=2,seq=130,d=128
timeout 120 compute-sanitizer --tool memcheck build-dev/mtile run attention_prefill --backend cuda --shape $SH 2>&1 |
  tail -3 >>"$log"
timeout 120 compute-sanitizer --tool racecheck build-dev/mtile run attention_prefill --backend cuda --shape $SH 2>&1 |
  tail -3 >>"$log"
for round in 1 2; do
  TAG="r$round "
  for s in 4096 2048; do
    case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=$s,d=128 -
    case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=$s,d=128 tma=0
  done
done
TAG=
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 warps=8
case_ attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 lazy_rescale=1
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 200 python3 bench/peers_matrix.py \
  --only attention_prefill --json "$OUT/peers_prefill.json" >"$OUT/peers_prefill.md" 2>&1
cat "$OUT/peers_prefill.md"
