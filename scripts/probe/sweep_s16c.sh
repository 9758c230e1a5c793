# Sixteenth session (bench/NOTES.md): the plain norms' long rows held (the new rule, "-") against
# the strided body the rule took before (chunks=0, n / 16 threads), at the sizes between. Carry build-ab.
set -uo pipefail
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s16c build-ab
ab() {  # kernel rows n: the rule, the old strided choice, the rule again
  local strided=$(( ($3 / 16 + 31) / 32 * 32 ))
  [ "$strided" -gt 1024 ] && strided=1024
  case_ "$1" "rows=$2,n=$3" -
  case_ "$1" "rows=$2,n=$3" "chunks=0,threads=$strided"
  case_ "$1" "rows=$2,n=$3" -
}
for n in 4104 5120 6144 7168 8192 10000 12288 16384; do ab rms_norm 4096 $n; done
ab rms_norm 2048 16384
ab gemma_rms_norm 4096 8192
ab rms_norm 256 8192
ab rms_norm 132 7168
case_ rms_norm rows=4096,n=7168 threads=256,chunks=4,whole=3
case_ rms_norm rows=4096,n=5120 threads=192,chunks=4,whole=3
case_ rms_norm rows=4096,n=5120 threads=320,chunks=2,whole=1,hold=0
cat "$log"
