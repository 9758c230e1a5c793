#!/usr/bin/env bash
# Builds mtile here for the GPU machine (which has no package registry): Release binaries with
# libstdc++ linked in, plus the two shared libraries they need from this machine. The build tree
# is build-release/ (kept, so the next bundle builds only what changed); what the GPU machine runs
# is copied to build-dev/: the CLI, the figures tools, context_test, the CUDA tests and the C ABI's
# libmtile_c.so with the Python package's launcher extension beside it (for
# scripts/python_gpu_check.sh build-dev: the Python package from this tree on
# it, without building a wheel). scripts/gpu_check.sh runs them there. Carry build-dev when calling
# the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" >/dev/null
cuda_tests=$(ninja -C build-release -t targets all | sed -n 's/^\(cuda_[a-z_]*_test\): phony$/\1/p' | sort -u)
cmake --build build-release --target mtile_cli mtile_cuda_figures mtile_allreduce_figures mtile_c capi_overhead \
  mtile_python_launcher context_test $cuda_tests
rm -rf build-dev
mkdir -p build-dev/lib build-dev/tests
cp build-release/mtile build-release/mtile_cuda_figures build-release/mtile_allreduce_figures build-release/capi_overhead \
  build-dev/
for t in context_test $cuda_tests; do cp "build-release/tests/$t" build-dev/tests/; done
cp build-release/libmtile_c.so build-release/_launcher.abi3.so build-dev/lib/
cp -L /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libxxhash.so.0 build-dev/lib/
# The device tool carries at most 64 MiB: symbols off the executables (71 -> 57 MiB).
strip build-dev/mtile build-dev/mtile_cuda_figures build-dev/mtile_allreduce_figures build-dev/capi_overhead \
  build-dev/tests/*
du -sh build-dev
