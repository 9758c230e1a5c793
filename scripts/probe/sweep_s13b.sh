# Session 13: two chunks a thread for the plain norm's held rows (rule: n / 8 threads, one chunk).
set -uo pipefail
export TIMING=events
S=scripts/bench_sweep.sh
C="- threads=256,chunks=2,whole=1 threads=256,chunks=2,whole=1,resident=0 threads=256,chunks=2,whole=1,hold=1 threads=128,chunks=4,whole=3 -"
bash $S rms_norm "rows=16384,n=4096 rows=2048,n=4096 rows=4096,n=4096" "$C"
bash $S rms_norm "rows=4096,n=2880 rows=16384,n=2048" "- threads=192,chunks=2,whole=1 threads=192,chunks=2,whole=1,resident=0 threads=128,chunks=2,whole=1 threads=128,chunks=3,whole=2 -"
bash $S rms_norm_residual "rows=16384,n=4096" "- threads=256,chunks=2,whole=1,hold=0 threads=256,chunks=2,whole=1 -"
