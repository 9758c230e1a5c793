"""Rewrites an emitted norm kernel for the probe harness: its name -> KNAME, its row tensors' 16-byte
accesses -> LDX1 (x before the first barrier), LDX, LDR, LDW, STO."""
import re, sys
kernel = sys.argv[1]
s = open("raw.cu").read()
s = re.sub(r'extern "C" __global__ void (__launch_bounds__\([^)]*\)) ' + kernel + r'_bf16\(', r"__global__ void \1 KNAME(", s)
cut = s.index("__syncthreads();")
head, tail = s[:cut], s[cut:]
vec = r"\*reinterpret_cast<const uint4\*>\((%s) \+ ([a-z_0-9]+)\)"
head = re.sub(vec % "x", r"LDX1(\1 + \2)", head)
s = head + tail
s = re.sub(vec % "x", r"LDX(\1 + \2)", s)
s = re.sub(vec % "residual", r"LDR(\1 + \2)", s)
s = re.sub(vec % "w", r"LDW(\1 + \2)", s)
s = re.sub(r"\*reinterpret_cast<uint4\*>\(out \+ ([a-z_0-9]+)\) = (.*);$", r"STO(out + \1, \2);", s, flags=re.M)
open("kernel.cu", "w").write(s)
print(kernel, "accesses:", {m: s.count(m + "(") for m in ("LDX1", "LDX", "LDR", "LDW", "STO")})
