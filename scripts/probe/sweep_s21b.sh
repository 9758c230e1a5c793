# Twenty-first session, second call: the new rule (the FMA body at 256 threads where two
# threadgroups an SM's worth of splits fill 7/8 of their wave and stream 4096 rows or more each)
# against the previous rule where it newly applies untimed (b4 s32768, b16 s16384), and where it
# stops short (b8 s8192 / s4096, b4 s16384), then the decode peers. Carry build-dev.
set -uo pipefail
REPS=${REPS:-50}
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s21b build-dev
shape() { echo "batch=$1,heads=32,kv_heads=8,seq=$2,d=128"; }
for round in 1 2; do
  TAG="r$round "
  case_ attention_decode "$(shape 4 32768)" -
  case_ attention_decode "$(shape 4 32768)" mma=1,threads=128,stages=2,splits=8
done
TAG=
case_ attention_decode "$(shape 16 16384)" -
case_ attention_decode "$(shape 16 16384)" mma=0,threads=128,splits=4
for bs in 8,8192 8,4096 4,16384; do
  b=${bs%,*} s=${bs#*,}
  case_ attention_decode "$(shape $b $s)" -
  case_ attention_decode "$(shape $b $s)" mma=0,threads=256,splits=$((264 / (b * 8)))
done
cat "$log"
MTILE_LIBRARY=build-dev/lib/libmtile_c.so PYTHONPATH=python timeout 200 python3 bench/peers_matrix.py \
  --only attention_decode --json "$OUT/peers_decode.json" >"$OUT/peers_decode.md" 2>"$OUT/peers_decode.err"
echo "peers rc $?"
cat "$OUT/peers_decode.md"
