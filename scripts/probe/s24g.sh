#!/usr/bin/env bash
# Twenty-fourth session, seventh call (#9): attention_decode at the two 128 MiB cells below 90% of
# copy (b1 s32768 82%, b8 s4096 84%; 256 threadgroups of 128 threads, about two an SM, where
# read_patterns.sh's 264 segments read 86% and 528 or more 93-95%): more splits, more buffers,
# bigger blocks, against the rule. Carry build-dev/mtile and build-dev/lib.
set -uo pipefail
OUT=${OUT:-/tmp/out}
REPS=${REPS:-40}
. "$(dirname "$0")/bench_case.sh"
sweep_begin s24g build-dev
B1=batch=1,heads=32,kv_heads=8,seq=32768,d=128
B8=batch=8,heads=32,kv_heads=8,seq=4096,d=128
for c in - splits=64 splits=64,stages=4 splits=32,stages=4 splits=32,bn=32 splits=66; do case_ attention_decode $B1 $c; done
for c in - splits=8 splits=8,stages=4 splits=4,stages=4 splits=4,bn=32; do case_ attention_decode $B8 $c; done
case_ attention_decode $B1 -
case_ attention_decode $B8 -
cat "$log"
