# Twenty-first session, third call: the rule at 2048 rows a split where it newly applies untimed
# (b16 s4096 against the FMA body at 128 threads and 4 splits; b2 s32768 against the mma body with
# stages 2 and 16 splits), two rounds. Carry build-dev.
set -uo pipefail
REPS=${REPS:-50}
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s21c build-dev
shape() { echo "batch=$1,heads=32,kv_heads=8,seq=$2,d=128"; }
for round in 1 2; do
  TAG="r$round "
  case_ attention_decode "$(shape 16 4096)" -
  case_ attention_decode "$(shape 16 4096)" mma=0,threads=128,splits=4
  case_ attention_decode "$(shape 2 32768)" -
  case_ attention_decode "$(shape 2 32768)" mma=1,threads=128,stages=2,splits=16
done
cat "$log"
