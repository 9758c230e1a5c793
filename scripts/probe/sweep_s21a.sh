# Twenty-first session: (1) the decode at 64-128 pairs and long sequences, the rule against the
# FMA body at 256 threads and two threadgroups an SM's worth of splits (b8 s32768 251.6 against
# the rule's 258-262 in the twentieth session); the mma body with three stages at one split; (2)
# the pre-norm's long rows held without the weights (hold=0: 50 registers at 512 threads of 4
# chunks against 73 with them, so two threadgroups an SM instead of one). Carry build-dev.
set -uo pipefail
REPS=${REPS:-50}
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s21a build-dev
shape() { echo "batch=$1,heads=32,kv_heads=8,seq=$2,d=128"; }
for round in 1 2; do
  TAG="r$round "
  case_ attention_decode "$(shape 8 32768)" -
  case_ attention_decode "$(shape 8 32768)" mma=0,threads=256,splits=4
done
TAG=
for bs in 8,16384 12,32768 16,32768 16,8192 12,8192; do
  b=${bs%,*} s=${bs#*,}
  case_ attention_decode "$(shape $b $s)" -
  case_ attention_decode "$(shape $b $s)" mma=0,threads=256,splits=$((264 / (b * 8)))
done
for b in 32 64; do
  case_ attention_decode "$(shape $b 4096)" -
  case_ attention_decode "$(shape $b 4096)" mma=1,threads=128,stages=3,splits=1
done
pre() { echo "rows=$1,n=$2"; }
for round in 1 2; do
  TAG="r$round "
  case_ add_rms_norm "$(pre 2048 16384)" -
  case_ add_rms_norm "$(pre 2048 16384)" threads=1024,chunks=2,hold=0
  case_ add_rms_norm "$(pre 2048 16384)" threads=512,chunks=4,hold=0
  case_ add_rms_norm "$(pre 4096 8192)" -
  case_ add_rms_norm "$(pre 4096 8192)" threads=1024,chunks=1,hold=0
  case_ add_rms_norm "$(pre 4096 8192)" threads=512,chunks=2,hold=0
  case_ add_rms_norm "$(pre 4096 8192)" threads=256,chunks=4,hold=0
  case_ add_rms_norm "$(pre 4096 7168)" -
  case_ add_rms_norm "$(pre 4096 7168)" threads=896,chunks=1,hold=0
  case_ add_rms_norm "$(pre 4096 7168)" threads=448,chunks=2,hold=0
done
cat "$log"
