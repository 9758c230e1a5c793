// Scalar semantics of the IR's arithmetic, shared by the CPU engine and fold_constants so that
// folding a constant and executing it can never disagree. docs/IR.md states these rules.
#pragma once
#include <cstdint>

#include "mtile/ir.hpp"

namespace mtile::ir {

// One lane's value. bool is u (0/1); f16/bf16 are held as the float they round to; 64-bit types
// use u64/i64. Whatever writes a 32-bit member leaves the upper half zero (see make()).
union Scalar {
  uint32_t u;
  int32_t i;
  float f;
  uint64_t u64;
  int64_t i64;
};

inline Scalar scalar_from_bits(ScalarType t, uint64_t bits) {
  Scalar s;
  s.u64 = is_64bit(t) ? bits : static_cast<uint32_t>(bits);
  return s;
}
inline uint64_t scalar_bits(ScalarType t, Scalar s) {
  return is_64bit(t) ? s.u64 : s.u;
}

// Throws Error (with `what` as context) on integer division by zero.
Scalar eval_unary(Op op, ScalarType from, ScalarType to, Scalar a);
Scalar eval_binary(Op op, ScalarType t, Scalar a, Scalar b);
Scalar eval_fma(ScalarType t, Scalar a, Scalar b, Scalar c);
// Combines two lanes in a simd reduction.
Scalar eval_reduce_step(Op op, ScalarType t, Scalar a, Scalar b);
// Identity of a reduction (0, -inf/lowest, +inf/highest).
Scalar reduce_identity(Op op, ScalarType t);

// Memory: element `i` of a buffer of element type `t` <-> a Scalar of value_type(t).
Scalar load_element(ScalarType t, const void* base, uint64_t i);
void store_element(ScalarType t, void* base, uint64_t i, Scalar v);
// An index operand (u32 or u64) as 64 bits.
inline uint64_t index_value(ScalarType t, Scalar s) {
  return t == ScalarType::u64 ? s.u64 : s.u;
}

}  // namespace mtile::ir
