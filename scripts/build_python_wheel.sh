#!/usr/bin/env bash
# Builds the Python wheel here for the GPU machine (CPython 3.12 there, no package registry): the
# package calls libmtile_c.so through ctypes and its launcher extension is built on the limited
# API, so one cp310-abi3-linux_x86_64 wheel serves every CPython from 3.10, and the library carries {fmt} and xxHash inside, needing only glibc and the C++
# runtime (libstdc++.so.6, libgcc_s.so.1: torch needs them too). Prints the newest glibc and
# libstdc++ symbol versions it needs.
# Writes dist/mtile-*.whl; carry dist when calling the device tool, then run
# scripts/python_gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
python3 -m pip wheel --no-deps -w dist .
wheel=$(ls dist/mtile-*.whl)
case "$wheel" in *-cp310-abi3-linux_x86_64.whl) ;; *) echo "unexpected wheel tag: $wheel" >&2; exit 1 ;; esac
# What the library needs at run time: glibc's libraries and the C++ runtime only.
tmp=$(mktemp -d)
python3 -m zipfile -e "$wheel" "$tmp"
needed=$(readelf -d "$tmp/mtile/libmtile_c.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
versions=$(objdump -T "$tmp/mtile/libmtile_c.so" | grep -o 'GLIBC\(XX\)\?_[0-9.]*' | sort -Vu |
  awk -F_ '{v[$1] = $2} END {printf "GLIBC %s, GLIBCXX %s", v["GLIBC"], v["GLIBCXX"]}')
rm -rf "$tmp"
for lib in $needed; do
  case "$lib" in libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | ld-linux-x86-64.so.* | libstdc++.so.6 | libgcc_s.so.1) ;;
    *) echo "libmtile_c.so needs $lib, which the GPU machine may lack" >&2; exit 1 ;;
  esac
done
echo "$wheel (libmtile_c.so needs: $needed; at least $versions)"
