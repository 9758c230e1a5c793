#!/usr/bin/env bash
# Builds the tests with ThreadSanitizer and with AddressSanitizer + UBSan and runs them (CI runs
# this after the plain build). TSan: the tests that launch from several host threads
# (tests/unit/context_test.cpp; tests/e2e/collective_test.cpp, whose simulated ranks share memory). ASan+UBSan: the CPU test suite, without the tests that only run
# external tools (the installed-package example, the MSL shim compile check) or need a GPU.
# Build trees: build-tsan/, build-asan/, both at -O1 -g1 (CMakeLists.txt: half the compile time
# of -O2 -g). Each step prints how long it took; the ASan build is most of CI's time.
set -euo pipefail
cd "$(dirname "$0")/.."
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1"
launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

step() {  # step NAME COMMAND...: runs it and prints its wall time
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "sanitizer_check: $name took $((SECONDS - start)) s"
}

step "tsan configure" cmake -S . -B build-tsan -G Ninja -DMTILE_WERROR=ON -DMTILE_SANITIZE=thread "${launcher[@]}"
step "tsan build" cmake --build build-tsan --target context_test collective_test
step "tsan context_test" ./build-tsan/tests/context_test
step "tsan collective_test" ./build-tsan/tests/collective_test

step "asan configure" cmake -S . -B build-asan -G Ninja -DMTILE_WERROR=ON -DMTILE_SANITIZE=address "${launcher[@]}"
step "asan build" cmake --build build-asan
# The tests that load NVRTC (every one has "Nvrtc" in its name) run without LeakSanitizer: its
# tracer can crash at exit in a process that loaded NVRTC (CI run of 2026-11-26: "Tracer caught
# signal 11" after a passing CudaCompileCheck), and leaks inside NVRTC are not ours to fix.
step "asan ctest" ctest --test-dir build-asan --output-on-failure -j2 -E "external_example|msl_compile|cuda_|Nvrtc"
ASAN_OPTIONS="detect_leaks=0 halt_on_error=1" step "asan ctest (NVRTC)" ctest --test-dir build-asan --output-on-failure -j2 -R Nvrtc -E "external_example|msl_compile|cuda_"
