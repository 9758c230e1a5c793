# Eighteenth session (bench/NOTES.md): sweep_s18c.sh's trend (more simdgroups a column group, faster)
# one step further: gemv at m 8 with 32 simdgroups a group of 16 columns; m 1 with 8 simdgroups a
# threadgroup. Carry build-dev.
set -uo pipefail
REPS=100
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s18d build-dev
for s in m=8,n=4096,k=14336 m=8,n=4096,k=4096; do
  for c in - ksplit=32,threads=1024 -; do case_ gemv $s $c; done
done
for c in - threads=256 threads=64; do case_ gemv m=1,n=4096,k=4096 $c; done
cat "$log"
