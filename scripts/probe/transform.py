"""Rewrites an emitted norm kernel for the probe harness: a template `probe_kernel<H>` whose row
tensors' 16-byte accesses go through H: H::x1 (x before the first barrier), H::x, H::r, H::w, H::out."""
import re, sys
kernel = sys.argv[1]
s = open("raw.cu").read()
# mtile's own cache hints first become plain accesses: the probe chooses each access's hint.
s = re.sub(r"mt_load_(?:keep|stream)\((reinterpret_cast<const uint4\*>\([^)]*\))\)", r"*\1", s)
s = re.sub(r"mt_store_(?:keep|stream)\(reinterpret_cast<(uint4)\*>\(([^)]*)\), (.*)\);$", r"*reinterpret_cast<\1*>(\2) = \3;", s,
           flags=re.M)
s = re.sub(r'extern "C" __global__ void (__launch_bounds__\([^)]*\)) ' + kernel + r'_bf16\(', r"template <class H> __global__ void \1 probe_kernel(", s)
cut = s.index("__syncthreads();")
head, tail = s[:cut], s[cut:]
vec = r"\*reinterpret_cast<const uint4\*>\((%s) \+ ([a-z_0-9]+)\)"
head = re.sub(vec % "x", r"H::x1(\1 + \2)", head)
s = head + tail
s = re.sub(vec % "x", r"H::x(\1 + \2)", s)
s = re.sub(vec % "residual", r"H::r(\1 + \2)", s)
s = re.sub(vec % "w", r"H::w(\1 + \2)", s)
s = re.sub(r"\*reinterpret_cast<uint4\*>\(out \+ ([a-z_0-9]+)\) = (.*);$", r"H::out(out + \1, \2);", s, flags=re.M)
open("kernel.cu", "w").write(s)
print(kernel, "accesses:", {m: s.count(m + "(") for m in ("H::x1", "H::x", "H::r", "H::w", "H::out")})
