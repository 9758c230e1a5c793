# Seventeenth session (bench/NOTES.md): the first sweep on the H200 (copy 4250 GB/s against the
# H100's 3025), where attention_decode fell to 0.88-0.97 of SDPA and the post- and pre-norms at
# 16384 x 4096 to 0.95 / 0.98 of Triton. Decode: more K/V in flight (tile, stages, threads, own
# copies). Its call ran out at batch 64 x 4096, before the norm cases it also had (held chunks,
# hold, threads): those are sweep_s17b.sh's now. Carry build-dev.
set -uo pipefail
REPS=60
. "$(dirname "$0")/bench_case.sh"
sweep_begin sweep_s17a build-dev
t0=$SECONDS
for b in 32:4096 8:32768 64:4096 1:32768 8:4096; do
  s=batch=${b%%:*},heads=32,kv_heads=8,seq=${b##*:},d=128
  for c in - stages=3 stages=4 tile=2,stages=4 tile=8,stages=0 tile=8,stages=2 threads=128 own_copies=1 stages=0; do
    case_ attention_decode $s $c
  done
  echo "decode $b done $((SECONDS - t0)) s" >>"$log"
done
echo "all done $((SECONDS - t0)) s" >>"$log"
cat "$log"
