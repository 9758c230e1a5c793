#!/usr/bin/env bash
# CI's Python step: `pip install .` from the repository root into a fresh virtual environment, then
# the package's tests: every library kernel on numpy arrays (the CPU engine) against float64
# references, the refusals, and a kernel library built against the installed package. The torch
# tests skip where torch is absent; the CUDA ones where no GPU is.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build-venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q . pytest numpy
# From python/tests, so that `import mtile` is the installed package, not the source folder.
cd python/tests && "../../$venv/bin/python" -m pytest -q .
