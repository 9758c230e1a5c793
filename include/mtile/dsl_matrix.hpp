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
#include <vector>

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
  // A threadgroup matrix as a swizzled copy_tile lands it (swizzle 128: docs/IR.md "Tile copies"):
  // columns in blocks of 64, block j from element offset + j * block_stride, its element (r, c)
  // at swizzle128_index(r, c % 64) (r counted from a 1024-byte boundary), where ld is ignored. The
  // loaders read it 8 x 8 at a time, as aligned_rows (the permutation keeps 16-byte rows whole).
  MatrixRef swizzled128(U32 block_stride) const;

  MemRef at(const Val& r, const Val& c) const;
  bool is_bounded() const { return rows_bounded_ || cols_bounded_; }
  Val inside(const Val& r, const Val& c) const;  // r < rows && c < cols, for the bounds it has
  ScalarType elem() const { return elem_; }

 private:
  MatrixRef(ir::MemSpace space, int slot, ScalarType elem, const Val& ld, const Val* offset);
  ir::MemSpace space_;
  int slot_;
  ScalarType elem_;
  Val ld_, offset_, rows_, cols_, block_stride_;
  bool swizzled_ = false, has_offset_ = false, rows_bounded_ = false, cols_bounded_ = false, aligned_rows_ = false;
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

// Warpgroup MMA from threadgroup memory (IR mma_async: wgmma on sm_90a, exact on the CPU engine;
// the target's async_mma says where it exists). The 128 threads of a warpgroup (threads 128 g ..
// 128 g + 127: four simdgroups) compute D (64 x n) = A (64 x 16) B (16 x n) + C together, n a
// multiple of 8 up to 256, A and B bf16 or f16 read from one threadgroup array laid out as core
// matrices (below); each thread holds n / 2 elements of the f32 accumulator:
//
//   WarpgroupAccVar acc(warpgroup_acc_zero(128));
//   ... copy_async the tiles; copy_async_wait(0); mma_fence(); barrier();
//   acc = mma_async(tiles, a, b, acc);      // in flight
//   acc = mma_wait(0, acc);                 // committed and done: readable, tiles writable again
//   store_mma_acc(c, r0 + 16 * (simd_group() % 4), c0 + 8 * j, acc.get().tile(j));
//
// A core matrix is 8 rows of 8 elements (16 bytes) stored contiguously; an operand's element
// (r, k) is at first + r / 8 * row_stride + k / 8 * k_stride + r % 8 * 8 + k % 8 (B's rows are
// its n: B(k, n) of an n-major matrix, as a torch Linear weight). first and both strides are
// multiples of 8 and the same for the whole warpgroup.
//
// With swizzle 128 (what the tensor cores read without bank conflicts) an operand is rows of 64
// elements (128 bytes), 8 rows a 1024-byte atom, the 16-byte chunk c of row r stored at chunk
// c ^ (r % 8): element (r, k) at first + r / 8 * row_stride + swizzle128_index(r % 8, k). The
// array is then aligned to 1024 bytes (the printer does it), first is a multiple of 8 with the
// 16 columns in one row, and row_stride a multiple of 512.
//
// B may instead be stored [k][n] (swizzle 128 only; `kn`), as attention's V [keys, d] is for P V:
// rows of 64 n-elements (128 bytes), one a k, swizzled as above; B(k, n) at the logical index
// first + k / 8 * k_stride + k % 8 * 64 + n / 64 * row_stride + n % 64, first, k_stride and
// row_stride multiples of 512 (whole atoms). swizzle128_rows_kn describes it.
struct CoreMatrices {
  U32 first, k_stride, row_stride;
  uint32_t swizzle = 0;  // 0 or 128
  bool kn = false;       // B stored [k][n]
};
// The index of element (r, k) of a rows x k_extent operand stored as core matrices with rows
// outermost: row_stride = 8 * k_extent, k_stride = 64 (what core_matrices() describes).
U32 core_matrix_index(U32 r, U32 k, uint32_t k_extent);
// Rows r0 .. (64 or n of them) and columns k0 .. k0 + 15 of such an operand starting at `first`.
CoreMatrices core_matrices(U32 first, U32 r0, U32 k0, uint32_t k_extent);
// The index of element (r, k), k < 64, of a tile of swizzled 128-byte rows: r * 64 + (k ^ 8 (r % 8)).
U32 swizzle128_index(U32 r, U32 k);
// Rows r0 .. and columns k0 .. k0 + 15 of such a tile at `first` (a multiple of 512; r0 of 8).
CoreMatrices swizzle128_rows(U32 first, U32 r0, U32 k0);
// B (16 x n) = rows k0 .. k0 + 15 of a [k][n] tile of swizzled 128-byte rows at `first` (a
// multiple of 512; k0 of 8), its columns in blocks of 64 `n_block_stride` elements apart.
CoreMatrices swizzle128_rows_kn(U32 first, U32 k0, uint32_t n_block_stride);

struct WarpgroupAcc {  // this thread's n / 2 f32 elements of a 64 x n accumulator
  std::vector<Val> v;
  // Columns 8 j .. 8 j + 7 of this simdgroup's 16 rows (16 (simd_group() % 4) ..), as mma's C.
  MmaAcc tile(uint32_t j) const;
};
WarpgroupAcc warpgroup_acc_zero(uint32_t n);
// D = A B + C: every thread of the warpgroup calls it with the same operands; D may be read only
// through mma_wait, and A's and B's memory may be written only after that wait.
WarpgroupAcc mma_async(const TgArray& tiles, const CoreMatrices& a, const CoreMatrices& b, const WarpgroupAcc& c,
                       SourceLoc loc = SourceLoc::current());
// The same with A from registers: each thread gives its 8 elements of its simdgroup's 16 rows of A
// (rows 16 (simd_group() % 4) .., in mma's A layout), as attention's P after its softmax; B from
// `tiles`. A register that feeds it may be written again only after mma_wait.
WarpgroupAcc mma_async(const TgArray& tiles, const MmaA& a, const CoreMatrices& b, const WarpgroupAcc& c,
                       SourceLoc loc = SourceLoc::current());
// Before mma_async reads memory this thread wrote (its copy_asyncs waited for): call it after the
// writes and before the barrier that publishes them.
void mma_fence(SourceLoc loc = SourceLoc::current());
// Commits this thread's mma_asyncs as a group and waits until at most `pending` groups are in
// flight; gives `acc` back to be read (with pending 0) or fed to the next mma_async.
WarpgroupAcc mma_wait(uint32_t pending, const WarpgroupAcc& acc, SourceLoc loc = SourceLoc::current());

class WarpgroupAccVar {  // an accumulator kept in f32 locals across a loop's iterations
 public:
  explicit WarpgroupAccVar(const WarpgroupAcc& init, SourceLoc loc = SourceLoc::current());
  WarpgroupAccVar& operator=(const WarpgroupAcc& v);
  WarpgroupAcc get() const;

 private:
  std::vector<std::unique_ptr<Var>> v_;
};

}  // namespace mtile::dsl
