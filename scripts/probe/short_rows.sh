#!/usr/bin/env bash
# Device probe for #10 (not CI): torch.compile's generated Triton for the post-norm at 2048 x 1000
# (short rows, one wave) and ncu's view of its kernel and mtile's.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
export TORCHINDUCTOR_CACHE_DIR=$OUT/inductor TORCH_LOGS=output_code PROBE_SHAPES="post:2048:1000"
python3 scripts/probe/inductor.py > $OUT/inductor.log 2>&1
echo "inductor rc $?"
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__block_size,launch__grid_size,launch__occupancy_limit_registers,launch__occupancy_limit_warps,lts__t_sector_hit_rate.pct,smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_barrier_per_warp_active.pct,sm__cycles_active.avg
cat > /tmp/ncu_probe.py <<'PY'
import torch, peers
x, r = (torch.randn(2048, 1000, dtype=torch.bfloat16, device="cuda") for _ in range(2))
w = torch.randn(1000, dtype=torch.bfloat16, device="cuda")
c = torch.compile(peers.eager_post, dynamic=False)
for _ in range(3): c(x, r, w)
torch.cuda.synchronize()
PY
timeout 200 ncu --metrics $M --kernel-name regex:triton -c 3 python3 /tmp/ncu_probe.py > $OUT/ncu_compile.log 2>&1
echo "ncu compile rc $?"
timeout 120 ncu --metrics $M --kernel-name regex:rms_norm_residual -c 3 build-dev/mtile bench --backend cuda --filter '^rms_norm_residual$' --shape rows=2048,n=1000 --reps 3 > $OUT/ncu_mtile.log 2>&1
echo "ncu mtile rc $?"
for cfg in "threads=64,chunks=2" "threads=32,chunks=4"; do
  args=(); IFS=, read -ra parts <<<"$cfg"; for p in "${parts[@]}"; do args+=(--config "$p"); done
  timeout 120 ncu --metrics gpu__time_duration.sum,smsp__warp_issue_stalled_barrier_per_warp_active.pct --kernel-name regex:rms_norm_residual -c 2 build-dev/mtile bench --backend cuda --filter '^rms_norm_residual$' --shape rows=2048,n=1000 --reps 3 "${args[@]}" > "$OUT/ncu_mtile_$cfg.log" 2>&1
done
grep -h "def triton\|XBLOCK\|R0_BLOCK\|num_warps\|RBLOCK\|grid" $OUT/inductor.log | head -20
grep -E "gpu__time|block_size|grid_size|registers|warps_active|stalled|dram__th|cycles_active" $OUT/ncu_compile.log $OUT/ncu_mtile*.log | sed 's/  */ /g'
