# Seventeenth session, for the next call (bench/NOTES.md): what sweep_s17a.sh did not reach on
# the H200 before its call ran out. The post- and pre-norm cells behind Triton (16384 x 4096 at
# 0.95 / 0.98, 2048 x 4096, 4096 x 8192): threads, held chunks, hold; then attention_decode:
# own_copies (now the rule's) against shared copies, and teams of 8 lanes. Carry build-dev.
set -uo pipefail
REPS=60
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s17b build-dev
for s in rows=16384,n=4096 rows=2048,n=4096; do
  for c in - hold=0 threads=256,chunks=2,whole=1,hold=1 threads=256,chunks=2,whole=1,hold=0 threads=1024,chunks=1,hold=0; do
    case_ rms_norm_residual $s $c
    case_ add_rms_norm $s $c
  done
done
for c in - threads=1024,chunks=1,hold=0 threads=1024,chunks=1,hold=1 threads=512,chunks=2,whole=1,hold=0 threads=1024,chunks=0; do
  case_ add_rms_norm rows=4096,n=8192 $c
  case_ rms_norm_residual rows=4096,n=8192 $c
done
# team=8,chunks=2: 3 shuffles a row-head sum instead of 4 and half the sums (sass.sh at b32 s4096:
# 610 instructions a trip of 64 rows against 724, but 199 registers against 119).
for b in 32:4096 64:4096 8:32768 1:32768 8:4096; do
  for c in - own_copies=0 threads=128 team=8,chunks=2,tile=2 team=8,chunks=2,tile=2,threads=128; do
    case_ attention_decode batch=${b%%:*},heads=32,kv_heads=8,seq=${b##*:},d=128 $c
  done
done
cat "$log"
