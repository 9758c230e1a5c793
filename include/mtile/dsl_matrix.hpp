// Tensor-core matrix multiply-accumulate in the DSL: the 32 lanes of a simdgroup (a CUDA warp)
// hold a 16 x 16 A, a 16 x 8 B and a 16 x 8 f32 accumulator between them, each lane its fragment
// of each (the layout of mtile/mma_layout.hpp), and `mma` computes D = A B + C on all of them at
// once (mma.sync on CUDA, simdgroup_matrix on Metal, exactly on the CPU engine: docs/IR.md).
//
//   MmaAccVar acc(mma_zero());                               // f32 locals, kept across iterations
//   for_(0u, k, 16u, [&](Val k0) {
//     acc = mma(load_mma_a(a, row0, k0), load_mma_b_nk(w, col0, k0), acc);
//   });
//   store_mma_acc(c, row0, col0, acc);                       // cast to c's element type
//
// The loaders and the storer take a MatrixRef (a row-major matrix in a device tensor or a
// threadgroup array) and the tile's first row and column; they compute each lane's addresses
// from simd_lane(). A MatrixRef bounded to rows x cols reads 0 outside and writes nothing there,
// so the tiles at the edge of any M x N need no separate path. Every lane of the simdgroup must
// call mma together (a trace error where control flow differs within the simdgroup).
#pragma once
#include <array>
#include <memory>

#include "mtile/dsl.hpp"
#include "mtile/mma_layout.hpp"

namespace mtile::dsl {

struct MmaA {  // this lane's 8 elements of A (16 x 16, m x k): bf16 or f16
  std::array<Val, mma_layout::kAElements> v;
};
struct MmaB {  // its 4 elements of B (16 x 8, k x n), of A's type
  std::array<Val, mma_layout::kBElements> v;
};
struct MmaAcc {  // its 4 elements of C or D (16 x 8, m x n): f32
  std::array<Val, mma_layout::kCElements> v;
};

// D = A B + C, the products exact and the sums in f32 or wider (docs/IR.md).
MmaAcc mma(const MmaA& a, const MmaB& b, const MmaAcc& c, SourceLoc loc = SourceLoc::current());
// An accumulator of zeros.
MmaAcc mma_zero();

// An accumulator kept in four f32 locals, for a loop that accumulates: acc = mma(a, b, acc).
class MmaAccVar {
 public:
  explicit MmaAccVar(const MmaAcc& init, SourceLoc loc = SourceLoc::current());
  MmaAccVar& operator=(const MmaAcc& v);
  MmaAcc get() const;
  operator MmaAcc() const { return get(); }

 private:
  std::array<std::unique_ptr<Var>, mma_layout::kCElements> v_;
};

// A row-major matrix in memory: element (r, c) is element offset + r * ld + c of a device tensor
// or a threadgroup array (of a TgArray2D: element (r, c) of it).
class MatrixRef {
 public:
  MatrixRef(const Tensor& t, U32 ld);
  MatrixRef(const Tensor& t, U32 ld, U32 offset);
  MatrixRef(const TgArray& a, U32 ld);
  MatrixRef(const TgArray& a, U32 ld, U32 offset);
  MatrixRef(const TgArray2D& a);  // its (r, c) is the array's (r, c)
  // The same matrix with only rows 0 .. rows-1 and columns 0 .. cols-1: the loaders read 0 and
  // the storer writes nothing outside them. bounded_rows bounds the rows alone (where every
  // column a tile reaches exists, as k does for a k that is a multiple of 16).
  MatrixRef bounded(U32 rows, U32 cols) const;
  MatrixRef bounded_rows(U32 rows) const;
  // A promise that every row a fragment loader reads starts on a 16-byte boundary: ld, the offset
  // and the column a loader is given (k0 of load_mma_a and load_mma_b_nk*, n0 of load_mma_b_kn*)
  // are multiples of 8 elements. The loaders then read a threadgroup matrix (without bounds) 8 x 8
  // at a time (IR load_matrix: ldmatrix on CUDA) instead of element by element; the CPU engine
  // reports a row that breaks the promise.
  MatrixRef aligned_rows() const;
  bool loads_whole_matrices() const;  // what aligned_rows gives: threadgroup, no bounds, promised

  MemRef at(const Val& r, const Val& c) const;
  bool is_bounded() const { return rows_bounded_ || cols_bounded_; }
  Val inside(const Val& r, const Val& c) const;  // r < rows && c < cols, for the bounds it has
  ScalarType elem() const { return elem_; }

 private:
  MatrixRef(ir::MemSpace space, int slot, ScalarType elem, const Val& ld, const Val* offset);
  ir::MemSpace space_;
  int slot_;
  ScalarType elem_;
  Val ld_, offset_, rows_, cols_;
  bool has_offset_ = false, rows_bounded_ = false, cols_bounded_ = false, aligned_rows_ = false;
};

// This lane's elements of A (16 x 16) = a(r0 .. r0 + 15, k0 .. k0 + 15), a of bf16 or f16.
MmaA load_mma_a(const MatrixRef& a, U32 r0, U32 k0, SourceLoc loc = SourceLoc::current());
// B (16 x 8) from a matrix stored n-major, as torch's Linear weight W[n, k] is:
// B(k, n) = w(n0 + n, k0 + k).
MmaB load_mma_b_nk(const MatrixRef& w, U32 n0, U32 k0, SourceLoc loc = SourceLoc::current());
// B (16 x 8) from a matrix stored k-major: B(k, n) = b(k0 + k, n0 + n).
MmaB load_mma_b_kn(const MatrixRef& b, U32 k0, U32 n0, SourceLoc loc = SourceLoc::current());
// B for the two tiles of columns n0 .. n0 + 7 and n0 + 8 .. n0 + 15 (one ldmatrix .x4 on CUDA for
// an aligned_rows threadgroup matrix).
std::array<MmaB, 2> load_mma_b_nk_x2(const MatrixRef& w, U32 n0, U32 k0, SourceLoc loc = SourceLoc::current());
std::array<MmaB, 2> load_mma_b_kn_x2(const MatrixRef& b, U32 k0, U32 n0, SourceLoc loc = SourceLoc::current());
// An accumulator (16 x 8) = c(r0 .. r0 + 15, n0 .. n0 + 7), widened to f32.
MmaAcc load_mma_acc(const MatrixRef& c, U32 r0, U32 n0, SourceLoc loc = SourceLoc::current());
// Stores this lane's elements of `acc` to c(r0 .. r0 + 15, n0 .. n0 + 7), cast to c's type.
void store_mma_acc(const MatrixRef& c, U32 r0, U32 n0, const MmaAcc& acc, SourceLoc loc = SourceLoc::current());

}  // namespace mtile::dsl
