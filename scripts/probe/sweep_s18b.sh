# Eighteenth session (bench/NOTES.md): L2 prefetch-size hints on the H200. build-ab/128 and
# build-ab/256 hold this tree's mtile and libmtile_c.so (xz) with `.L2::128B` / `.L2::256B` on the
# 16-byte cp.async (decode, prefill, gemm) and on the 16-byte cache-hinted loads (the norms);
# build-dev is the same tree without. Alternated twice: bench/peers_matrix.py (every matrix case,
# mtile beside torch) and `mtile bench` of the norm cells behind Triton. Then the plain and post
# norms at 2048 x 1000 with a simdgroup or two a row. Carry build-dev and build-ab.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=100
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s18b build-dev
for v in 128 256; do
  mkdir -p /tmp/ab/$v
  xz -dc build-ab/$v/mtile.xz >/tmp/ab/$v/mtile && chmod +x /tmp/ab/$v/mtile
  xz -dc build-ab/$v/libmtile_c.so.xz >/tmp/ab/$v/libmtile_c.so
  cp build-dev/lib/_launcher.abi3.so /tmp/ab/$v/
done
export PYTHONPATH=$PWD/python
dir() { [ "$1" = base ] && echo "$PWD/build-dev" || echo "/tmp/ab/$1"; }
for round in 1 2; do
  for v in base 128 256; do
    d=$(dir $v)
    lib=$d/lib/libmtile_c.so; [ $v = base ] || lib=$d/libmtile_c.so
    MTILE_CACHE_DIR=/tmp/cache-$v MTILE_LIBRARY=$lib timeout 100 python3 bench/peers_matrix.py >"$OUT/pm.md" 2>&1
    echo "peers_matrix $v $round rc $?" >>"$log"
    grep -E "^\| (gemm|gemv|attention)" "$OUT/pm.md" | sed "s/^/[pm $v $round] /" >>"$log"
    for c in add_rms_norm:2048:16384 add_rms_norm:4096:8192 rms_norm_residual:4096:8192 \
      rms_norm_residual:16384:4096 add_rms_norm:16384:4096 add_rms_norm:2048:4096; do
      IFS=: read -r k r n <<<"$c"
      MTILE_CACHE_DIR=/tmp/cache-$v TAG="$v $round " bench_case "$d/mtile" $k rows=$r,n=$n -
    done
  done
done
for c in - threads=32,chunks=4 threads=64,chunks=2 threads=128,chunks=1; do
  case_ rms_norm rows=2048,n=1000 $c
  case_ rms_norm_residual rows=2048,n=1000 $c
done
cat "$log"
