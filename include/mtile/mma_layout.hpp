// Where the elements of an Mma's fragments live: PTX's mma.sync.aligned.m16n8k16.row.col layout
// for bf16/f16 A and B and f32 C and D, the IR's Mma (docs/IR.md, "Matrix multiply-accumulate").
// This file is the one statement of it: the CPU engine executes Mma with it, the DSL's fragment
// loaders and storers (mtile/dsl_matrix.hpp) compute their addresses with it, and the tests check
// the CUDA and Metal lowerings against it.
//
// A simdgroup of 32 lanes holds A (16 x 16, m x k), B (16 x 8, k x n) and C, D (16 x 8, m x n);
// lane l holds elements i = 0..7 of A, 0..3 of B, 0..3 of C and of D. With g = l / 4, t = l % 4:
//   A element i   row g + 8 * ((i >> 1) & 1)   col 2t + (i & 1) + 8 * (i >> 2)
//   B element i   k   2t + (i & 1) + 8 * (i >> 1)   n g
//   C, D element i   row g + 8 * (i >> 1)   col 2t + (i & 1)
// The functions take the lane as a uint32_t (the engine, tests) or as a traced u32 value (the DSL:
// simd_lane()), and the element index as a C++ number; each gives the row or the column.
#pragma once
#include <cstdint>

namespace mtile::mma_layout {

constexpr uint32_t kM = 16, kN = 8, kK = 16;        // the shape: D (m x n) = A (m x k) B (k x n) + C
constexpr uint32_t kAElements = 8, kBElements = 4;  // per lane
constexpr uint32_t kCElements = 4;                  // per lane, also D's

namespace detail {
// `v + k`, leaving a traced value alone where k is 0.
template <class L>
L plus(const L& v, uint32_t k) {
  if (k == 0) return v;
  return v + k;
}
}  // namespace detail

template <class L>
L a_row(const L& lane, uint32_t i) {
  return detail::plus<L>(lane / 4u, 8u * ((i >> 1) & 1u));
}
template <class L>
L a_col(const L& lane, uint32_t i) {
  return detail::plus<L>(lane % 4u * 2u, (i & 1u) + 8u * (i >> 2));
}
template <class L>
L b_k(const L& lane, uint32_t i) {
  return detail::plus<L>(lane % 4u * 2u, (i & 1u) + 8u * (i >> 1));
}
template <class L>
L b_n(const L& lane, uint32_t /*i*/) {
  return lane / 4u;
}
template <class L>
L c_row(const L& lane, uint32_t i) {
  return detail::plus<L>(lane / 4u, 8u * (i >> 1));
}
template <class L>
L c_col(const L& lane, uint32_t i) {
  return detail::plus<L>(lane % 4u * 2u, i & 1u);
}

}  // namespace mtile::mma_layout
