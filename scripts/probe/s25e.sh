#!/usr/bin/env bash
# Twenty-fifth session, fifth call (#9): ncu's PM sampling (DRAM throughput and SM activity over the
# kernel's time, about 1.5 us a sample) of attention_decode at the 128 MiB cells: b1 s32768 on tile
# copies (the rule) and on cp.async (stages 2), b32 s1024 (one split, no merge). Writes pm_NAME.txt
# (the raw page) and prints the samples from the first active one. Carry build-dev/mtile and lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_CACHE_DIR=/tmp/mtile-cache
H=heads=32,kv_heads=8,d=128
profile() {  # NAME SHAPE [CONFIG...]
  local name=$1 shape=$2
  shift 2
  timeout 100 ncu --section PmSampling --page raw --print-metric-instances values --kernel-name regex:attention_decode \
    -c 1 build-dev/mtile bench --backend cuda --filter '^attention_decode$' --shape "$shape" --reps 1 "$@" \
    >"$OUT/pm_$name.txt" 2>&1
  echo "== $name rc $?"
  python3 - "$OUT/pm_$name.txt" <<'PY'
import sys
t = open(sys.argv[1]).read()
def samples(name):
    i = t.find(name); j = t.find("(", i); k = t.find(")", j)
    return [float(v.strip().replace(",", "")) for v in t[j + 1:k].split(";")] if i >= 0 else []
dram, sm, hmma = (samples(n) for n in ("dramc__read_throughput.avg.pct", "sm__cycles_active.avg", "sm__pipe_tensor_op_hmma_cycles_active_realtime"))
first = next(i for i, v in enumerate(sm) if v > 0)
last = max(i for i, v in enumerate(sm) if v > 0)
print("sample dram% sm_active_cycles hmma")
for i in range(first, last + 1):
    print(i - first, dram[i], sm[i], hmma[i] if hmma else "")
PY
}
profile b1_tma batch=1,seq=32768,$H
profile b1_cpasync batch=1,seq=32768,$H --config mma=1 --config stages=2 --config tma=0
profile b32_s1024 batch=32,seq=1024,$H
profile b1_s4096 batch=1,seq=4096,$H
