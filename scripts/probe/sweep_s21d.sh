# Twenty-first session, fourth call: the pre-norm's held rows with the sums stored after every
# whole chunk's loads (before, the store of chunk j held chunk j + 1's loads until chunk j's
# arrived), against the rule's strided body at its long rows; and every chunk whole (no branch for
# the last, a --config) at the two-chunk rows of 4096. Carry build-dev.
set -uo pipefail
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s21d build-dev
for round in 1 2; do
  TAG="r$round "
  case_ add_rms_norm rows=2048,n=16384 -
  case_ add_rms_norm rows=2048,n=16384 threads=512,chunks=4,hold=0
  case_ add_rms_norm rows=2048,n=16384 threads=512,chunks=4,hold=0,whole=4
  case_ add_rms_norm rows=2048,n=16384 threads=1024,chunks=2,hold=0,whole=2
  case_ add_rms_norm rows=4096,n=8192 -
  case_ add_rms_norm rows=4096,n=8192 threads=256,chunks=4,hold=0
  case_ add_rms_norm rows=4096,n=8192 threads=256,chunks=4,hold=0,whole=4
  case_ add_rms_norm rows=4096,n=8192 threads=512,chunks=2,hold=0,whole=2
  case_ add_rms_norm rows=4096,n=8192 threads=1024,chunks=1,hold=0,whole=1
done
TAG=
case_ add_rms_norm rows=4096,n=7168 -
case_ add_rms_norm rows=4096,n=7168 threads=448,chunks=2,hold=0,whole=2
case_ add_rms_norm rows=4096,n=7168 threads=224,chunks=4,hold=0,whole=4
for rows in 16384 2048; do
  case_ add_rms_norm rows=$rows,n=4096 -
  case_ add_rms_norm rows=$rows,n=4096 whole=2
  case_ rms_norm_residual rows=$rows,n=4096 -
  case_ rms_norm_residual rows=$rows,n=4096 whole=2
done
cat "$log"
