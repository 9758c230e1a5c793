# Sourced by the probe sweeps: `bench_case MTILE KERNEL SHAPE CONFIG` appends `mtile bench`'s line
# for one case to $log, checked against float64 first, tagged "[$TAG CONFIG]"; CONFIG "-" is the
# dispatch rule's own choice, else NAME=VALUE,... ($REPS timed runs, default 100).
bench_case() {
  local bin=$1 kernel=$2 shape=$3 config=$4 args=()
  if [ "$config" != "-" ]; then
    IFS=, read -ra parts <<<"$config"
    for p in "${parts[@]}"; do args+=(--config "$p"); done
  fi
  "$bin" bench --backend cuda --filter "^$kernel\$" --shape "$shape" "${args[@]}" --reps "${REPS:-100}" 2>&1 |
    grep -E "^$kernel |rror" | sed "s/^/[${TAG:-}$config] /" >>"$log"
}
# `sweep_begin NAME DIR`: the preamble of a sweep of one binary, DIR/mtile (build-dev, build-ab):
# DIR/lib on the library path, one disk cache of compiled kernels for the whole sweep, $log =
# $OUT/NAME.txt begun with the GPU's name and clocks, and `case_ KERNEL SHAPE CONFIG` timing that
# binary.
sweep_begin() {
  export LD_LIBRARY_PATH=$PWD/$2/lib:${LD_LIBRARY_PATH:-}
  export MTILE_CACHE_DIR=${MTILE_CACHE_DIR:-/tmp/mtile-cache}
  log=${OUT:-.}/$1.txt
  nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader >"$log"
  sweep_bin=$2/mtile
}
case_() { bench_case "$sweep_bin" "$@"; }
# `check_case KERNEL ARGS...`: `mtile run KERNEL --backend cuda ARGS...` of that binary (its check
# against float64), its PASS / FAIL line appended to $log.
check_case() {
  local kernel=$1
  shift
  echo "[run $*] $("$sweep_bin" run "$kernel" --backend cuda "$@" 2>&1 | grep -E 'PASS|FAIL|rror' | head -2 | tr '\n' ' ')" >>"$log"
}
# `norm_peers_twice`: bench/peers.py twice (MTILE_LIBRARY and PYTHONPATH set by the caller) into
# $OUT/peers-{1,2}.{json,md}, then their per-cell medians (bench/peers_median.py), printed.
norm_peers_twice() {
  local i t0
  for i in 1 2; do
    t0=$SECONDS
    timeout 120 python3 bench/peers.py --json "$OUT/peers-$i.json" >"$OUT/peers-$i.md" 2>"$OUT/peers-$i.err"
    echo "peers $i rc $? $((SECONDS - t0)) s"
  done
  python3 bench/peers_median.py "$OUT"/peers-1.json "$OUT"/peers-2.json --json "$OUT/peers_median.json" \
    >"$OUT/peers_median.md" 2>&1
  cat "$OUT/peers_median.md"
}
