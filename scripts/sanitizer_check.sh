#!/usr/bin/env bash
# Builds the tests with ThreadSanitizer and with AddressSanitizer + UBSan and runs them (CI runs
# this after the plain build). TSan: the tests that launch from several host threads. ASan+UBSan:
# the CPU test suite. Build trees: build-tsan/, build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1"

cmake -S . -B build-tsan -G Ninja -DMTILE_WERROR=ON -DMTILE_SANITIZE=thread
cmake --build build-tsan --target context_test
./build-tsan/tests/context_test

cmake -S . -B build-asan -G Ninja -DMTILE_WERROR=ON -DMTILE_SANITIZE=address
cmake --build build-asan
ctest --test-dir build-asan --output-on-failure -j2 -E "external_example|msl_compile|cuda_"
