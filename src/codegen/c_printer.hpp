// The C-family printer shared by the CUDA and MSL backends (tinygrad-style): it walks the IR once,
// writes one statement per instruction and takes from a Dialect only the spellings in which the
// two languages differ. Everything semantic (integer wrapping, f16/bf16 rounding after each
// operation, shift masking, shuffle lane rules) is decided here, once, for both.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::codegen {

// A spelling per ScalarType, indexed by its value: u32, i32, f32, f16, bf16, bool, u64, i64, u8, i8,
// u16, i16, f8e4m3, f8e5m2 (the last six exist only in memory; their value-type entries are unused).
using TypeTable = std::array<std::string, kScalarTypeCount>;
inline const std::string& at(const TypeTable& t, ScalarType s) {
  return t[static_cast<size_t>(s)];
}

// What the body refers to; the dialect declares it in the kernel's signature.
struct KernelUses {
  std::vector<std::string> param_names;  // legal, collision-free identifiers, by parameter index
  std::vector<bool> constexpr_read;      // by parameter index: a ConstexprRef or ScalarRef still reads it
  std::set<ir::Op> builtins;             // ProgramId, ThreadId, ... the body reads
  std::set<ir::Op> ops;                  // every op in the body (a prelude's helpers come with their op)
  bool cache_hints = false;              // a device access carries a CacheHint
};

// Templates are fmt format strings; {0}, {1}, {2} are the operands' C expressions.
struct Dialect {
  TypeTable value_type;    // a value in a register (f16 and bf16 values live in float)
  TypeTable storage_type;  // an element of device or threadgroup memory
  TypeTable load;          // storage element {0} -> value
  TypeTable store;         // value {0} (already rounded to its type) -> storage element
  TypeTable round;         // float {0} rounded to the type; "{0}" where nothing rounds
  // Builtins ({0}: axis letter), Barrier, Fence, float math and float Add..Max, Fma, and ShuffleXor /
  // ShuffleDown with a constant lane operand {1} below 32. Also:
  //   Mma              {0} "bf16" or "f16", {1} the operands, {2} the simd lane -> a `mma_type` value; the
  //                    operands are 16 values, or with `mma_pack` 4 + 2 packed words of A and B and 4 C
  //   LoadMatrix       {0} matrices (1, 2, 4), {1} "_trans" or "", {2} the array, {3} this lane's index,
  //                    {4} the simd lane -> a value of type "mt_matrix{0}", whose words are `.w[0..]`
  //   CopyAsync        {0} pointer to the threadgroup element, {1} to the device element, {2} bytes;
  //                    "" prints the copy as element-by-element assignments
  //   CopyAsyncCommit  ""; CopyAsyncWait {0} the groups that may stay pending: "" prints nothing
  //   MmaFence         the statement; MmaWait {0} the groups that may stay pending
  //   MbarrierInit     {0} the array, {1} the index, {2} the count; MbarrierWait {2} the parity;
  //                    MbarrierArrive {2} "" or "_after_copies" (bits 1). No spelling: refused
  std::map<ir::Op, std::string> ops;
  // MmaAsync's statement: {d} an array of n / 2 f32 holding C, which becomes D; the operands'
  // swizzle (0 or 128); whether B is stored [k][n]; A's first index, k stride and row stride in
  // threadgroup array `array` as C expressions, or (4 of them) A's words from registers, each a
  // pair of 16-bit elements; B's first index, k stride and row stride. Empty: refused.
  std::function<std::string(const std::string& d, unsigned n, unsigned swizzle, bool b_kn, ScalarType ab,
                            const std::string& array, const std::vector<std::string>& a,
                            const std::array<std::string, 3>& b)>
      mma_async;
  std::string fence_operand;           // {0} an f32 lvalue that MmaWait gives back, read only after the wait
  std::string mma_type;                // Mma's 4 f32 lanes, read as .x .y .z .w
  std::string mma_pack;                // {0} "bf16" | "f16", {1}, {2} two values -> one 32-bit word; "": floats
  std::string storage_from_bits;       // {0} an unsigned integer whose low 16 bits are an element, {1} its storage type
  std::string system_fence;            // a fence of system scope; "" prints the device fence (one device, no peers)
  std::string f32_to_u32, f32_to_i32;  // toward zero, saturating, NaN -> 0
  std::string f32_to_u64, f32_to_i64;
  // Atomics, {0} a pointer to the element, {1} the value, {2} the compare value; keyed by AtomicOp.
  std::map<ir::AtomicOp, std::string> atomic;
  std::string atomic_pointer;         // {0} "device" or "threadgroup", {1} atomic type stem ("uint"), {2} the element
  std::string bitcast;                // {0} value, {1} the target value type
  std::string float_from_bits;        // a float from its bits {0}, for inf and NaN literals
  std::string shuffle_lane;           // value {0} of lane {1}, any lane per thread
  std::string simd_reduce;            // {0} value, {1} "sum" | "max" | "min", {2} type name
  bool simd_reduce_rounds_each_step;  // else the printer rounds an f16/bf16 sum once
  // {0} element type, {1} name, {2} element count, {3} its alignment (16, or 1024 where a swizzled
  // mma_async reads it)
  std::string tg_array;
  // Arrays of more than `static_tg_bytes` in all (0: no limit) are placed in one dynamic block
  // that `tg_dynamic_block` declares ({0} its alignment), each at an offset of its alignment: {0}
  // element type, {1} name, {2} byte offset.
  uint64_t static_tg_bytes = 0;
  std::string tg_dynamic_block, tg_dynamic_array;
  // Vector memory (LoadVector, StoreVector) as one access of a packed type: 32-bit words, 16-bit
  // elements two to a word (the lower index in the low half). The packed type of `w` words is
  // "<stem><w>" for 2 and 4 words and the word itself for one; members .x .y .z .w. A dialect
  // without vector accesses (empty stems) gets code lowered for a target that forms none.
  TypeTable vector_stem;
  std::string vector_load;   // {0} packed type, {1} pointer to the first element -> the packed value
  std::string vector_store;  // {0} packed type, {1} pointer to the first element, {2} packed value
  std::string vector_make;   // {0} packed type, {1} its words, comma-separated
  // Cache hints on device accesses (ir::CacheHint, docs/IR.md), keyed by hint. hinted_load: {0} the
  // accessed type (a storage element or a packed vector), {1} a pointer to the element (of the
  // tensor's storage type) -> the value of type {0}; hinted_store: {0}, {1} as those, {2} the value.
  // A hint without a spelling prints the plain access (Metal has no such control).
  std::map<ir::CacheHint, std::string> hinted_load, hinted_store;
  // Everything before the body: header comment, prelude, signature (without " {").
  std::function<std::string(const ir::Function&, const KernelUses&)> head;
  // The body's first statement, after the threadgroup arrays ("": none).
  std::string entry_statement;
};

// The whole kernel in the dialect. Throws Error naming the kernel for input it cannot print.
std::string print_kernel(const ir::Function& f, const Dialect& d);

// Bytes of the function's threadgroup arrays, each from a 16-byte aligned offset.
uint64_t threadgroup_layout_bytes(const ir::Function& f);

// "<name>_<dtype>"; throws Error if the kernel's name is not a C identifier.
std::string entry_name(const ir::Function& f);

// "x: in bf16*, n: constexpr u32, ..." for header comments.
std::string param_summary(const ir::Function& f);

}  // namespace mtile::codegen
