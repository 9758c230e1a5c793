# Sixteenth session (bench/NOTES.md): rows past 4096 held in registers with the weights read after
# the reduction (hold=0) against the strided body (the rule), the three norm forms. Carry build-ab.
set -uo pipefail
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s16b build-ab
for k in rms_norm rms_norm_residual add_rms_norm; do
  case_ $k rows=4096,n=7168 -
  for c in threads=448,chunks=2,whole=1,hold=0 threads=256,chunks=4,whole=3,hold=0 threads=896,chunks=1,hold=0; do
    case_ $k rows=4096,n=7168 $c
  done
  case_ $k rows=4096,n=7168 -
  case_ $k rows=4096,n=8192 -
  for c in threads=512,chunks=2,whole=1,hold=0 threads=256,chunks=4,whole=3,hold=0 threads=1024,chunks=1,hold=0; do
    case_ $k rows=4096,n=8192 $c
  done
  case_ $k rows=4096,n=8192 -
  case_ $k rows=2048,n=16384 -
  for c in threads=1024,chunks=2,whole=1,hold=0 threads=512,chunks=4,whole=3,hold=0 threads=256,chunks=8,whole=7,hold=0; do
    case_ $k rows=2048,n=16384 $c
  done
  case_ $k rows=2048,n=16384 -
  for c in - threads=320,chunks=2,whole=1,hold=0 threads=640,chunks=1,hold=0; do case_ $k rows=4096,n=5120 $c; done
  for s in rows=1,n=8192 rows=32,n=8192; do
    for c in - threads=512,chunks=2,whole=1,hold=0 threads=1024,chunks=1,hold=0; do case_ $k $s $c; done
  done
done
cat "$log"
