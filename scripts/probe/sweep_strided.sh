#!/usr/bin/env bash
# Device probe (#10, not CI): the norms' rule against the strided body (chunks=0) at several
# threadgroup sizes, with cache hints, under mtile bench (flush: evict_l2's two reads).
cd "$(dirname "$0")/../.."
S="- chunks=0,threads=256 chunks=0,threads=384 chunks=0,threads=448 chunks=0,threads=512 chunks=0,threads=640 chunks=0,threads=1024"
{
bash scripts/bench_sweep.sh "rms_norm_residual" "rows=4096,n=5120 rows=4096,n=7168 rows=4096,n=8192 rows=2048,n=16384" "$S"
bash scripts/bench_sweep.sh "rms_norm add_rms_norm" "rows=4096,n=5120 rows=4096,n=7168 rows=2048,n=16384" "$S"
bash scripts/bench_sweep.sh "rms_norm_residual add_rms_norm rms_norm" "rows=1,n=8192 rows=32,n=8192 rows=256,n=7168 rows=16384,n=4096 rows=2048,n=4096" "- chunks=0,threads=512 chunks=0,threads=1024"
} 2>&1 | tee $OUT/sweep.txt
