# Twenty-second session, after the last call: cuda_agreement_test (which found the CPU engine's gemm
# rule taking tile copies that its 64 KiB could not hold with their mbarriers) and the gemm kernels'
# `mtile test --backend cuda` on the fixed rule. Carry build-dev/mtile, build-dev/lib, build-dev/tests.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/build-dev/lib MTILE_CACHE_DIR=/tmp/mtile-cache
timeout 200 build-dev/tests/cuda_agreement_test 2>&1 | tail -4
echo "agreement rc $?"
build-dev/mtile test --backend cuda --filter '^gemm' 2>&1 | tail -2
