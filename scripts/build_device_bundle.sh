#!/usr/bin/env bash
# Builds mtile here for the GPU machine (which has no package registry): Release binaries with
# libstdc++ linked in, plus the two shared libraries they need from this machine, in build-dev/.
# scripts/gpu_check.sh runs them there. Carry build-dev when calling the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" >/dev/null
cmake --build build-dev
mkdir -p build-dev/lib
cp -L /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libxxhash.so.0 build-dev/lib/
# Only what gpu_check.sh runs travels (the device tool carries at most 64 MiB): drop object files,
# the libraries (every binary links mtile statically) and the tests that need no GPU.
find build-dev -name '*.o' -delete
rm -f build-dev/libmtile*
find build-dev/tests -maxdepth 1 -type f -perm -u+x ! -name 'cuda_*_test' ! -name context_test -delete
du -sh build-dev
