#!/usr/bin/env bash
# Device probe for #10 (not CI): torch.compile's generated Triton for the wide norms, and ncu's
# view of its kernel and mtile's at 4096 x 7168.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python:$PWD/bench
export TORCHINDUCTOR_CACHE_DIR=$OUT/inductor TORCH_LOGS=output_code
python3 scripts/probe/inductor.py > $OUT/inductor.log 2>&1
echo "inductor rc $?"
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__block_size,launch__grid_size,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,launch__occupancy_limit_warps,sm__maximum_warps_per_active_cycle_pct,lts__t_sector_hit_rate.pct,smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct,launch__shared_mem_per_block
cat > /tmp/ncu_probe.py <<'PY'
import torch, peers
for name, rows, n in (("post", 4096, 7168), ("post", 4096, 5120)):
    x, r = (torch.randn(rows, n, dtype=torch.bfloat16, device="cuda") for _ in range(2))
    w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    c = torch.compile(peers.eager_post, dynamic=False)
    for _ in range(3): c(x, r, w)
    torch.cuda.synchronize()
PY
timeout 240 ncu --metrics $M --kernel-name regex:triton -c 6 python3 /tmp/ncu_probe.py > $OUT/ncu_compile.log 2>&1
echo "ncu compile rc $?"
for n in 7168 5120; do
timeout 120 ncu --metrics $M --kernel-name regex:rms_norm_residual -c 3 build-dev/mtile bench --backend cuda --filter '^rms_norm_residual$' --shape rows=4096,n=$n --reps 3 > $OUT/ncu_mtile_$n.log 2>&1
echo "ncu mtile $n rc $?"
done
build-dev/mtile emit rms_norm_residual --target cuda --dtype bf16 --shape rows=4096,n=7168 > $OUT/mtile_7168.cu 2>&1
