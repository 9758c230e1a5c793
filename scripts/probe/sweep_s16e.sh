# Sixteenth session (bench/NOTES.md): the weights (and the post-norm's residual) read after the
# reduction (hold=0) at 1-16384 rows of 4096, post- and pre-norm. Carry build-dev.
set -uo pipefail
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s16e build-dev
for r in 1 32 128 256 512 1024 2048 16384; do
  for c in - threads=512,hold=0 -; do case_ rms_norm_residual rows=$r,n=4096 "$c"; done
done
for r in 256 1024 2048 16384; do
  for c in - threads=256,chunks=2,whole=1,hold=0 -; do case_ add_rms_norm rows=$r,n=4096 "$c"; done
done
cat "$log"
