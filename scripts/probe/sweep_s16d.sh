# Sixteenth session (bench/NOTES.md): Configs for the cells still behind a peer (post 256 x 4096 and
# the pre-norm at 32 / 2048 x 4096, graph or events as `mtile bench` times them) and fewer splits
# for attention_decode at batch 1, 4096 tokens. Carry build-dev.
set -uo pipefail
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s16d build-dev
for c in - threads=256,chunks=2,whole=1 threads=256,chunks=2,whole=1,hold=0 threads=512,hold=0 -; do
  case_ rms_norm_residual rows=256,n=4096 "$c"
done
for s in rows=32,n=4096 rows=2048,n=4096; do
  for c in - threads=256,chunks=2,whole=1 threads=256,chunks=2,whole=1,hold=0 threads=512,hold=0 -; do
    case_ add_rms_norm "$s" "$c"
  done
done
for c in - splits=16 splits=16,stages=2 splits=24 -; do
  case_ attention_decode batch=1,heads=32,kv_heads=8,seq=4096,d=128 "$c"
done
cat "$log"
