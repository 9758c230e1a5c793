# Twentieth session: (1) the widened mma rule (K and V in two buffers up to batch * kv_heads =
# sm_count / 2) against the FMA body where it newly applies and was not timed (b2 s16384, b2 / b4
# s32768); (2) is the large-batch decode held by the wave's empty places? 256 threadgroups of 256
# threads (b32 s4096, one split) fill 256 of an H200's 264 places (two an SM); b33 (264) and b66
# (528) fill them whole: if GB/s jumps there, a balanced split (every threadgroup the same share
# of batch * seq) is the lever; (3) b8 s32768 Configs of 256 threadgroups. Carry build-dev.
set -uo pipefail
REPS=50
. "$(dirname "$0")/bench_case.sh"
sweep_begin decode_waves build-dev
shape() { echo "batch=$1,heads=32,kv_heads=8,seq=$2,d=128"; }
for bs in 2,16384 2,32768 4,32768; do
  s=$(shape ${bs%,*} ${bs#*,})
  case_ attention_decode $s -
  case_ attention_decode $s mma=0
done
for b in 32 33 64 66; do case_ attention_decode "$(shape $b 4096)" -; done
for b in 32 33; do case_ attention_decode "$(shape $b 32768)" -; done
s=$(shape 8 32768)
case_ attention_decode $s mma=0,threads=256,splits=4
case_ attention_decode $s mma=0,threads=128,splits=16
case_ attention_decode $s mma=1,threads=128,stages=2,splits=8
case_ attention_decode $s mma=1,threads=128,stages=2,splits=2
cat "$log"
