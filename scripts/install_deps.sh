#!/usr/bin/env bash
# Installs the Debian packages mtile builds with (CI and the README's quick start run this; as root,
# or through sudo). Nothing is done when they are all there.
# libdlpack-dev: the C ABI takes DLTensors; python3-venv: CI installs the Python package into a
# fresh virtual environment; python3-dev: the package's launcher is a CPython extension. The CUDA
# toolkit is optional: without it everything builds, and the CUDA backend loads the driver and
# NVRTC at run time where they exist.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libgtest-dev libcli11-dev nlohmann-json3-dev
      libfmt-dev libxxhash-dev libdlpack-dev python3-venv python3-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi
