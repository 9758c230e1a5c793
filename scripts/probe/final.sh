#!/usr/bin/env bash
# Device (#10, eleventh session): the norm peers under the new flush, the norm family's mtile bench
# cases, and Python host time, in one call. Outputs under $OUT.
cd "$(dirname "$0")/../.."
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
t0=$SECONDS
python3 bench/peers.py --json $OUT/peers.json > $OUT/peers.md 2> $OUT/peers.err
echo "peers rc $? $((SECONDS - t0)) s"
t0=$SECONDS
build-dev/mtile bench --backend cuda --filter '^(rms_norm|rms_norm_residual|add_rms_norm|add_rms_norm_unrounded|gemma_rms_norm|gemma_add_rms_norm|mt_rms_norm_wide|ffai_rms_norm_residual)$' --out $OUT/bench_norms.json > $OUT/bench_norms.txt 2>&1
echo "bench rc $? $((SECONDS - t0)) s"
t0=$SECONDS
python3 bench/python_overhead.py > $OUT/python_overhead.txt 2>&1
echo "overhead rc $? $((SECONDS - t0)) s"
