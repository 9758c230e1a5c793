# Sixteenth session (bench/NOTES.md): sweep_s16e's hold=0 at other hidden sizes. Carry build-dev.
set -uo pipefail
REPS=60
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s16f build-dev
for s in rows=256,n=2048 rows=512,n=3072 rows=256,n=1000 rows=512,n=2880; do
  for c in - hold=0; do case_ rms_norm_residual $s $c; done
done
for s in rows=1024,n=2048:128 rows=2048,n=3072:192 rows=2048,n=1000:64; do
  for c in - "threads=${s##*:},chunks=2,whole=1,hold=0"; do case_ add_rms_norm ${s%%:*} $c; done
done
cat "$log"
