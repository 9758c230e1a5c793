#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root, with the wheel that
# scripts/build_python_wheel.sh built here carried in dist/ (or the folder given as $1), or with
# `build-dev` as $1 (scripts/build_device_bundle.sh): then this tree's python/ on that build's
# libmtile_c.so (MTILE_LIBRARY), the quick loop while the wheel is not rebuilt. There:
# Python 3.12 with torch, triton, numpy and pytest, and no package registry. Installs the wheel
# with pip (no index, no dependencies) into its own folder, then runs the package's tests (the GPU
# ones included), the host-overhead measurement and bench/peers.py (PEERS_RUNS times, then their
# per-cell medians by bench/peers_median.py). Logs go under $OUT; a summary
# is printed last.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
dist=${1:-dist}
if [ -f "$dist/lib/libmtile_c.so" ]; then  # a bundle: the source package on its library
  export MTILE_LIBRARY=$PWD/$dist/lib/libmtile_c.so
  export LD_LIBRARY_PATH=$PWD/$dist/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
  echo "this tree's python/ on $MTILE_LIBRARY" >"$OUT/pip_install.log"
else
  wheel=$(ls "$dist"/mtile-*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || { echo "no mtile wheel in $dist (scripts/build_python_wheel.sh makes one)" >&2; exit 1; }
  site=/tmp/mtile-site
  rm -rf "$site"
  if ! python3 -m pip install --no-index --no-deps --target "$site" "$wheel" >"$OUT/pip_install.log" 2>&1; then
    # A wheel is a zip of the installed files: without a working pip, unpacking it is the install.
    echo "pip failed (see pip_install.log); unpacking the wheel instead" | tee -a "$OUT/pip_install.log"
    python3 -m zipfile -e "$wheel" "$site" || exit 1
  fi
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
export MTILE_CACHE_DIR=/tmp/mtile-cache
rm -rf "$MTILE_CACHE_DIR"
summary=()
step() {  # step NAME LOG COMMAND...: runs it, keeps its output, records its status and time
  local name=$1 log=$2
  shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  summary+=("$(printf '%-28s rc=%-3s %4ss  %s' "$name" "$rc" "$((SECONDS - t0))" "$log")")
  return $rc
}
{ nvidia-smi; ldd --version | head -1
  libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
  echo "$libstdcxx: newest $(strings "$libstdcxx" | grep -o '^GLIBCXX_3\.4\.[0-9]*' | sort -V | tail -1)"
  python3 -c 'import sys, torch; print(sys.version); print("torch", torch.__version__)'
  python3 -c 'import triton; print("triton", triton.__version__)'; } >"$OUT/machine.txt" 2>&1
# From python/tests, so that `import mtile` is the installed wheel, not the source folder.
step "pytest (CPU + CUDA)" pytest.log bash -c "cd python/tests && python3 -m pytest -v -rs ."
step "host overhead per call" overhead.md python3 bench/python_overhead.py
# PEERS_RUNS=K: K runs of the peers (separate processes), and the per-cell medians (peers_median.md).
runs=()
for i in $(seq 1 "${PEERS_RUNS:-1}"); do
  suffix=$([ "${PEERS_RUNS:-1}" = 1 ] || echo "-$i")
  step "peers (bench/peers.py)$suffix" "peers$suffix.md" python3 bench/peers.py --json "$OUT/peers$suffix.json"
  runs+=("$OUT/peers$suffix.json")
done
[ "${#runs[@]}" -gt 1 ] && step "peers, per-cell medians" peers_median.md \
  python3 bench/peers_median.py "${runs[@]}" --json "$OUT/peers_median.json"

echo "==== machine"; head -20 "$OUT/machine.txt"
echo "==== pytest"; grep -E "PASSED|FAILED|SKIPPED|ERROR" "$OUT/pytest.log" | tail -80; tail -3 "$OUT/pytest.log"
echo "==== host overhead"; cat "$OUT/overhead.md"
echo "==== peers"; cat "$OUT"/peers*.md
echo "==== summary"; printf '%s\n' "${summary[@]}"
