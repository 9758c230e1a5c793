# Session 13: where two chunks a thread starts to pay for the plain norm (row count), and other n.
set -uo pipefail
S=scripts/bench_sweep.sh
bash $S rms_norm "rows=132,n=4096 rows=256,n=4096 rows=512,n=4096 rows=1024,n=4096" "- threads=256,chunks=2,whole=1,hold=1 -"
bash $S rms_norm "rows=2048,n=1000 rows=4096,n=1000" "- threads=64,chunks=2,whole=1,hold=1 -"
bash $S rms_norm "rows=2048,n=2048 rows=8192,n=2048" "- threads=128,chunks=2,whole=1,hold=1 -"
bash $S rms_norm "rows=4096,n=3072 rows=4096,n=1536" "- threads=192,chunks=2,whole=1,hold=1 threads=96,chunks=2,whole=1,hold=1 -"
bash $S gemma_rms_norm "rows=4096,n=4096" "- threads=256,chunks=2,whole=1,hold=1 -"
