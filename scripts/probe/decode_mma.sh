# attention_decode's tensor-core body (Config mma 1; kernels/attention/decode_mma.hpp), written
# after ncu showed the FMA body issuing on 78% of cycles at b8 s32768 where cuDNN's decode (wmma)
# issues on 18%: its agreement with float64 on CUDA (bf16 and f16, groups 1 to 16, d 64 to 256,
# splits) and under compute-sanitizer, then `mtile bench` of the rule (the FMA body) against it at
# a wave of 3 threadgroups an SM (168 registers) and others, then the decode peers. Carry build-dev.
set -uo pipefail
REPS=50
. "$(dirname "$0")/bench_case.sh"
sweep_begin decode_mma build-dev
run() { check_case attention_decode "$@"; }
M="--config mma=1 --config threads=128 --config bn=16"
for t in bf16 f16; do
  run --dtype $t --shape batch=1,heads=32,kv_heads=8,seq=4096,d=128 $M --config splits=48
  run --dtype $t --shape batch=3,heads=32,kv_heads=8,seq=1000,d=128 $M --config splits=1
  run --dtype $t --shape batch=2,heads=16,kv_heads=2,seq=777,d=64 $M --config splits=5 --config bn=32
  run --dtype $t --shape batch=1,heads=16,kv_heads=1,seq=300,d=96 $M --config splits=3
  run --dtype $t --shape batch=1,heads=3,kv_heads=1,seq=129,d=256 $M --config splits=2
  run --dtype $t --shape batch=2,heads=4,kv_heads=4,seq=1,d=128 $M
done
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 build-dev/mtile run attention_decode --backend cuda --dtype bf16 \
    --shape batch=1,heads=32,kv_heads=8,seq=2000,d=128 $M --config splits=6 --reps 1 >"$OUT/san.log" 2>&1
  echo "[sanitizer $tool] rc $? $(tail -1 "$OUT/san.log")" >>"$log"
done
m=mma=1,threads=128
ab() {  # ab SHAPE SPLITS...: the rule, then the mma body at each splits (bn 16), and bn 32 at the first
  local s=$1 first=$2
  shift
  case_ attention_decode "$s" -
  for sp in "$@"; do case_ attention_decode "$s" $m,bn=16,splits=$sp; done
  case_ attention_decode "$s" $m,bn=32,splits=$first
}
ab batch=1,heads=32,kv_heads=8,seq=4096,d=128 48 32
ab batch=8,heads=32,kv_heads=8,seq=4096,d=128 6 12
ab batch=32,heads=32,kv_heads=8,seq=4096,d=128 1 2 3
ab batch=64,heads=32,kv_heads=8,seq=4096,d=128 1 2 3
ab batch=1,heads=32,kv_heads=8,seq=32768,d=128 48 96
ab batch=8,heads=32,kv_heads=8,seq=32768,d=128 6 12
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 150 python3 bench/peers_matrix.py --only attention_decode \
  --json "$OUT/decode_peers.json" >"$OUT/decode_peers.md" 2>&1
cat "$OUT/decode_peers.md"
