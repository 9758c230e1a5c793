#!/usr/bin/env bash
# Twenty-third session, third call (#9): the decode rule on tile copies (tma 1, three buffers)
# against the previous rule's Config at shapes off the peer table (short and mid-length splits, one
# split of 1024 rows), then the matrix peers (gemm, gemv, decode, prefill) in one run. Carry
# build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s23c build-dev
A=heads=32,kv_heads=8,d=128
case_ attention_decode batch=16,seq=4096,$A -
case_ attention_decode batch=16,seq=4096,$A mma=0,tma=0,threads=256,splits=2,stages=2,own_copies=1
case_ attention_decode batch=4,seq=32768,$A -
case_ attention_decode batch=4,seq=32768,$A mma=0,tma=0,threads=256,splits=8,stages=2,own_copies=1
case_ attention_decode batch=2,seq=512,$A -
case_ attention_decode batch=2,seq=512,$A mma=1,tma=0,threads=128,splits=8,stages=0
case_ attention_decode batch=64,seq=1024,$A -
case_ attention_decode batch=64,seq=1024,$A mma=0,tma=0,threads=256,splits=1,stages=2,own_copies=1
case_ attention_decode batch=1,seq=4096,$A -
case_ attention_decode batch=1,seq=4096,$A mma=1,tma=0,threads=128,splits=32,stages=0
case_ attention_decode batch=8,seq=4096,heads=32,kv_heads=8,d=64 -
case_ attention_decode batch=8,seq=4096,heads=32,kv_heads=8,d=64 tma=0
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 330 python3 bench/peers_matrix.py \
  --json "$OUT/peers_matrix.json" >"$OUT/peers_matrix.md" 2>&1
echo "peers rc $?"
cat "$OUT/peers_matrix.md"
