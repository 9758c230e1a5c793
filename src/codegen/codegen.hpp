// Code generators: CUDA C++ (for NVRTC) and Metal Shading Language, from lowered IR.
//
// Input: a function after passes::run_pipeline (no Call, no threadgroup_reduce_*); ConstexprRef
// may remain. Both backends print through one C-family printer (c_printer.hpp) and keep the
// semantics of docs/IR.md, which the CPU engine executes. The entry points are public, in
// mtile/compile.hpp.
#pragma once
#include "mtile/compile.hpp"
