#!/usr/bin/env bash
# Installs the Debian packages mtile builds with (CI runs this; so can you, as root).
# The CUDA toolkit is optional: without it everything builds, and the CUDA backend loads the
# driver and NVRTC at run time where they exist.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libgtest-dev libcli11-dev nlohmann-json3-dev
      libfmt-dev libxxhash-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
