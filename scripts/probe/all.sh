#!/usr/bin/env bash
# Device probe (#10, not CI): flush probes, then the peers under both flushes.
cd "$(dirname "$0")"
bash flush.sh > /dev/null 2>&1
export LD_LIBRARY_PATH=$PWD/../../build-dev/lib MTILE_LIBRARY=$PWD/../../build-dev/lib/libmtile_c.so PYTHONPATH=$PWD/../../python:$PWD/../../bench
python3 flush_torch.py 2>&1 | tee $OUT/flush_torch.txt
