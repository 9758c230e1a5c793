#!/usr/bin/env bash
# SASS of one emitted kernel, here (no GPU needed): `mtile emit` -> nvcc -cubin -> cuobjdump, then
# the instruction mix of the whole kernel and of its hottest loop (the longest backward branch's
# body). cuobjdump and nvdisasm come from the CUDA toolkit or, where the toolkit here lacks them,
# from PyPI's nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm wheels (unpacked under /tmp).
# Usage: scripts/probe/sass.sh KERNEL "SHAPE" [dtype] [arch] [--config k=v ...]
#   scripts/probe/sass.sh attention_prefill batch=1,heads=32,kv_heads=8,seq=4096,d=128 bf16 sm_90a
set -euo pipefail
kernel=$1 shape=$2 dtype=${3:-bf16} arch=${4:-sm_90a}
shift $(($# < 4 ? $# : 4))
B=${B:-build}
work=$(mktemp -d)
if ! command -v cuobjdump >/dev/null; then
  tool=/tmp/mtile-cuobjdump/nvidia/cu13/bin
  if [ ! -x $tool/cuobjdump ] || [ ! -x $tool/nvdisasm ]; then
    pip download -q --no-deps -d "$work" nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm >/dev/null
    for w in "$work"/nvidia_cuda_*.whl; do python3 -m zipfile -e "$w" /tmp/mtile-cuobjdump; done
    chmod +x $tool/cuobjdump $tool/nvdisasm
  fi
  PATH=$tool:$PATH
fi
"$B/mtile" emit "$kernel" --target cuda --arch "$arch" --dtype "$dtype" --shape "$shape" "$@" >"$work/k.cu"
head -1 "$work/k.cu"
nvcc -arch="$arch" -cubin -Xptxas -v -o "$work/k.cubin" "$work/k.cu" 2>&1 | grep -oE "Used [0-9]+ registers|[0-9]+ bytes spill stores" || true
cuobjdump -sass "$work/k.cubin" >"$work/k.sass"
mix() { grep -oE '^\s+/\*[0-9a-f]{4}\*/\s+[@!P0-9 ]*[A-Z][A-Z0-9_.]+' | awk '{print $NF}' | sed 's/\..*//' |
  sort | uniq -c | sort -rn | head -24 | awk '{printf "%s %s, ", $2, $1} END {print ""}'; }
echo "kernel: $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$work/k.sass") instructions"
mix <"$work/k.sass"
# The longest backward branch: its target .. itself.
read -r from to < <(grep -E 'BRA 0x' "$work/k.sass" | sed -E 's/.*\/\*([0-9a-f]{4})\*\/.*BRA (0x[0-9a-f]+).*/\1 \2/' |
  while read -r at target; do
    a=$((16#$at)) t=$((target))
    [ "$t" -lt "$a" ] && echo "$((a - t)) $t $a"
  done | sort -rn | head -1 | awk '{printf "%04x %04x\n", $2, $3}')
if [ -n "${from:-}" ]; then
  awk "/\\/\\*$from\\*\\//,/\\/\\*$to\\*\\//" "$work/k.sass" >"$work/loop.sass"
  echo "loop 0x$from-0x$to: $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$work/loop.sass") instructions"
  mix <"$work/loop.sass"
fi
rm -rf "$work"
