# Eighteenth session (bench/NOTES.md): the norm rule's two chunks a thread for the post- and
# pre-norms (build-dev, the new rule: "-") against the one chunk of n / 8 threads it chose before,
# at rows of 2048 and 4096 that fill the H200; then the norm peers twice and their per-cell medians.
# Carry build-dev.
set -uo pipefail
REPS=100
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s18a build-dev
old() { echo "threads=$(($1 / 8)),chunks=1,hold=1"; }
for round in 1 2; do
  for s in 16384:4096 2048:4096 4096:4096 256:4096 1024:4096 8192:2048 16384:2048 4096:2048; do
    [ $round = 2 ] && [ "${s%%:*}" != 16384 ] && [ "$s" != 2048:4096 ] && continue
    for k in rms_norm_residual add_rms_norm; do
      case_ $k rows=${s%%:*},n=${s##*:} -
      case_ $k rows=${s%%:*},n=${s##*:} "$(old ${s##*:})"
    done
  done
done
cat "$log"
export MTILE_LIBRARY=$PWD/build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/python MTILE_CACHE_DIR=/tmp/mtile-cache
norm_peers_twice
