#!/usr/bin/env bash
# Twenty-second session, second call (#10): under ncu (L2 invalidated) mtile's post-norm at 4096 x
# 7168 ran 42.4 us against torch.compile's 43.2-43.9, but bench/peers.py times them 43.8 / 42.4.
# The same cells through `mtile bench` and through peers.py with and without programmatic
# dependent launches (MTILE_CUDA_PDL). Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=60
. "$(dirname "$0")/bench_case.sh"
sweep_begin s22b build-dev
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
for s in rows=4096,n=7168 rows=4096,n=8192 rows=2048,n=16384; do case_ rms_norm_residual $s -; done
for s in rows=4096,n=8192 rows=2048,n=16384; do case_ add_rms_norm $s -; done
ONLY=post:4096x7168,post:4096x8192,post:2048x16384,pre:4096x8192,pre:2048x16384
for run in pdl1 nopdl pdl2 nopdl2; do
  pdl=1; [[ $run == nopdl* ]] && pdl=0
  MTILE_CUDA_PDL=$pdl timeout 150 python3 bench/peers.py --only $ONLY >"$OUT/peers_$run.md" 2>&1
  echo "peers $run rc $?" >>"$log"
  grep "^| p" "$OUT/peers_$run.md" | sed "s/^/[$run] /" >>"$log"
done
cat "$log"
