# Eighteenth session (bench/NOTES.md): gemv's Configs on the H200 at the decode shapes behind
# torch or far from copy (m 8 x 4096 x 14336: 0.92-0.96 of torch, 80% of copy; the 32 MiB
# shapes at 55-61%): the tensor-core path's simdgroups a column group (ksplit) and chunks a trip
# (unroll), the FMA body at m 8, and unroll / cols at m 1. Short: the session's last device
# minutes. Carry build-dev (its mtile and lib/ suffice).
set -uo pipefail
REPS=100
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s18c build-dev
m8="- ksplit=8,threads=256 ksplit=4,threads=128 unroll=4 ksplit=8,threads=256,unroll=4 mma=0,cols=4,ksplit=4,threads=128,unroll=1"
for c in $m8; do case_ gemv m=8,n=4096,k=14336 $c; done
for c in $m8; do case_ gemv m=8,n=4096,k=4096 $c; done
for c in - unroll=4 unroll=3 cols=2,ksplit=2; do case_ gemv m=1,n=4096,k=4096 $c; done
for c in - unroll=4; do case_ gemv m=1,n=14336,k=4096 $c; done
for s in m=8,n=4096,k=14336 m=8,n=4096,k=4096 m=1,n=4096,k=4096; do case_ gemv $s -; done
cat "$log"
