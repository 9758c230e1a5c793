set -uo pipefail
export TIMING=events
S=scripts/bench_sweep.sh
bash $S rms_norm_residual "rows=2048,n=4096" "- threads=256,chunks=2,whole=1 threads=256,chunks=2,whole=1,hold=0 threads=128,chunks=4,whole=3 threads=512,chunks=1,hold=0 chunks=0,threads=256 chunks=0,threads=512 -"
bash $S rms_norm_residual "rows=2048,n=1000" "- threads=128,chunks=1 threads=32,chunks=4,whole=3 threads=64,chunks=2,whole=1,hold=0 chunks=0,threads=64 chunks=0,threads=128 -"
bash $S rms_norm "rows=2048,n=16384" "- chunks=0,threads=512 chunks=0,threads=1024 chunks=0,threads=256 -"
bash $S add_rms_norm "rows=16384,n=4096" "- threads=256,chunks=2,whole=1 threads=512,hold=0 -"
bash $S rms_norm "rows=16384,n=4096" "- threads=256,chunks=2,whole=1 threads=512,hold=0 -"
