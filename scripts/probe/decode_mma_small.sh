# attention_decode's mma body where each split is short (bench/NOTES.md nineteenth session: at b1
# s4096 the mma body with 32 splits took 12.93 us against the FMA body's 14.75): the rule against
# the mma body at 16 and 32 splits over small batches and contexts. Carry build-dev.
set -uo pipefail
REPS=50
. "$(dirname "$0")/bench_case.sh"
sweep_begin decode_mma_small build-dev
for s in 1,4096 2,4096 4,4096 1,2048 1,8192 2,8192 1,16384; do
  shape=batch=${s%,*},heads=32,kv_heads=8,seq=${s#*,},d=128
  for c in - mma=1,threads=128,bn=16,splits=16 mma=1,threads=128,bn=16,splits=32; do case_ attention_decode $shape $c; done
done
cat "$log"
