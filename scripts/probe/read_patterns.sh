#!/usr/bin/env bash
# Device probe (#9, not CI): read_patterns.cu, a buffer read once by each access pattern.
set -uo pipefail
cd "$(dirname "$0")"
/usr/local/cuda/bin/nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/readprobe read_patterns.cu && /tmp/readprobe | tee "$OUT/read_patterns.txt"
