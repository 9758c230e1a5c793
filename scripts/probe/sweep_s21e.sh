# Twenty-first session, fifth call: the pre-norm with every chunk whole (no branch for the last)
# against the rule's last chunk behind its branch, by row count (sweep_s21d.sh: 2048 x 4096 18.40
# -> 17.73 us, but 16384 x 4096 130.2 -> 134.1). Carry build-dev.
set -uo pipefail
REPS=${REPS:-60}
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s21e build-dev
for round in 1 2; do
  TAG="r$round "
  for rows in 1024 2048 4096 8192; do
    case_ add_rms_norm rows=$rows,n=4096 -
    case_ add_rms_norm rows=$rows,n=4096 whole=2
  done
done
TAG=
for rows in 1 32; do
  case_ add_rms_norm rows=$rows,n=4096 -
  case_ add_rms_norm rows=$rows,n=4096 whole=1
done
case_ add_rms_norm rows=256,n=4096 -
case_ add_rms_norm rows=256,n=4096 whole=2
case_ add_rms_norm rows=2048,n=2048 -
case_ add_rms_norm rows=2048,n=2048 whole=2
case_ add_rms_norm rows=2048,n=3072 -
case_ add_rms_norm rows=2048,n=3072 whole=1
case_ gemma_add_rms_norm rows=2048,n=4096 -
case_ gemma_add_rms_norm rows=2048,n=4096 whole=2
cat "$log"
