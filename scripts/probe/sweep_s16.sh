# Sixteenth session (bench/NOTES.md): attention_decode's merge unrolled over the splits (build-ab/mtile)
# against the code before it (build-ab/mtile_base), own_copies, and held rows for the wide plain
# norms. Carry build-ab (mtile, mtile_base, lib/). Writes $OUT/sweep_s16.txt.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/build-ab/lib:${LD_LIBRARY_PATH:-}
log=${OUT:-.}/sweep_s16.txt
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader >"$log"
. "$(dirname "$0")/bench_case.sh"
case_() { TAG="$1 " bench_case "build-ab/$1" "$2" "$3" "$4"; }  # binary kernel shape config
for shape in batch=1,heads=32,kv_heads=8,seq=32768,d=128 batch=8,heads=32,kv_heads=8,seq=4096,d=128 \
  batch=1,heads=32,kv_heads=8,seq=4096,d=128; do
  for round in 1 2; do
    case_ mtile_base attention_decode "$shape" -
    case_ mtile attention_decode "$shape" -
    case_ mtile attention_decode "$shape" own_copies=1
  done
done
case_ mtile attention_decode batch=1,heads=32,kv_heads=8,seq=32768,d=128 splits=33
case_ mtile attention_decode batch=1,heads=32,kv_heads=8,seq=32768,d=128 splits=64,threads=128
case_ mtile attention_decode batch=1,heads=32,kv_heads=8,seq=4096,d=128 splits=64,threads=128
for c in - threads=512,chunks=2,whole=1 threads=512,chunks=2,whole=1,hold=0 threads=1024,chunks=1 \
  threads=256,chunks=4,whole=3,hold=0; do case_ mtile rms_norm rows=4096,n=8192 "$c"; done
for c in - threads=448,chunks=2,whole=1 threads=512,chunks=2,whole=1 threads=896,chunks=1; do
  case_ mtile rms_norm rows=4096,n=7168 "$c"
done
for c in - threads=1024,chunks=2,whole=1 threads=512,chunks=4,whole=3,hold=0; do
  case_ mtile rms_norm rows=2048,n=16384 "$c"
done
cat "$log"
