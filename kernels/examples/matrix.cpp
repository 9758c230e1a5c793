// The matrix constructs: example_mma multiplies on tensor cores (c = a w^T, one simdgroup per
// 16 x 8 tile of c, mtile/dsl_matrix.hpp); example_reverse_rows stages rows in threadgroup memory
// with asynchronous copies (copy_async, its commit and wait, and the barrier after them).
#include "kernels/examples/examples.hpp"
#include "kernels/spec_helpers.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: mma
// c (m x n, f32) = a (m x k) times w (n x k, a torch Linear weight) transposed, k a multiple of 16.
template <class T>
void example_mma(In<T> a, In<T> w, Out<f32> c, Constexpr m, Constexpr n, Constexpr k) {
  Val row0 = program_id(1) * 16u;                                    // a 16-row block of c
  Val col0 = (program_id(0) * (lsize() / 32u) + simd_group()) * 8u;  // 8 columns a simdgroup
  // Rows of a past m and of w past n read as 0.
  MatrixRef as = MatrixRef(a, k).bounded_rows(m), ws = MatrixRef(w, k).bounded_rows(n);
  MmaAccVar acc(mma_zero());  // this lane's 4 elements of the 16 x 8 tile, in f32
  for_(0u, k, 16u, [&](Val k0) { acc = mma(load_mma_a(as, row0, k0), load_mma_b_nk(ws, col0, k0), acc); });
  store_mma_acc(MatrixRef(c, n).bounded(m, n), row0, col0, acc);  // rows >= m, columns >= n: not written
}
// doc-snippet-end

constexpr uint32_t kMaxRow = 2048;  // elements of a row the threadgroup array holds

// doc-snippet: reverse_rows
// y[r, i] = x[r, n - 1 - i]: the row is copied to threadgroup memory 16 bytes a copy, then read back
// by other threads.
template <class T>
void example_reverse_rows(In<T> x, Out<T> y, Constexpr n) {
  const uint32_t lanes = 16 / storage_bytes(T::type);  // elements in 16 bytes: 4 f32, 8 f16 or bf16
  TgArray row = threadgroup_array<T>(kMaxRow);
  Val base = program_id(0) * n;
  for_(tid() * lanes, n, lsize() * lanes, [&](Val c) { copy_async(row[c], x[base + c], lanes); });
  copy_async_commit();  // this thread's copies so far are one group
  copy_async_wait(0);   // ... which is complete once no group is pending
  barrier();            // and seen by every thread of the threadgroup after the barrier
  for_(tid(), n, lsize(), [&](Val i) { store(y[base + i], load(row[n - 1u - i])); });
}
// doc-snippet-end

}  // namespace

KernelSpec example_mma_spec() {
  KernelSpec k;
  k.def = define_half_kernel("example_mma", ir::Mode::Elementwise, {"a", "w", "c", "m", "n", "k"},
                             MTILE_HALF_VARIANTS(example_mma));
  k.family = "examples";
  k.summary = "c = a w^T (bf16/f16 in, f32 out) with mma: one simdgroup per 16 x 8 tile, edges masked";
  using rule::var;
  rule::Expr m = var("m"), n = var("n"), kk = var("k"), sg = var("simdgroups");
  k.dims = {"m", "n", "k"};
  k.config = {{"simdgroups", 4}};
  k.dispatch = {.grid = rule::ceil_div(n, sg * 8), .grid_y = rule::ceil_div(m, 16), .tpg = sg * var("simd_width")};
  k.preconditions = {m >= 1,
                     n >= 1,
                     kk >= 16,
                     kk % 16 == 0,
                     sg >= 1,
                     var("simd_width") == 32,
                     var("tpg") == sg * 32,
                     var("grid") == rule::ceil_div(n, sg * 8),
                     var("grid_y") == rule::ceil_div(m, 16),
                     var("grid_z") == 1};
  k.sizes = {{"a", m * kk}, {"w", n * kk}, {"c", m * n}};
  k.reference = [](const Shape& s, HostTensors& t) {
    linear_reference(t["a"], t["w"], t["c"], dim(s, "m"), dim(s, "n"), dim(s, "k"));
  };
  // The products of the rounded inputs are exact and the sums are f32 (tensor cores) or one rounding
  // of an f64 sum (the CPU engine): an f32 tolerance, whatever the input type.
  k.tolerance = {{ScalarType::bf16, {2e-5, 2e-4}}, {ScalarType::f16, {2e-5, 2e-4}}};
  k.flops = 2 * m * n * kk;
  k.example_shape = {{"m", 64}, {"n", 64}, {"k", 64}};
  k.test_shapes = {{{"m", 16}, {"n", 8}, {"k", 16}},
                   {{"m", 33}, {"n", 20}, {"k", 48}},
                   {{"m", 5}, {"n", 3}, {"k", 32}},
                   {{"m", 64}, {"n", 72}, {"k", 64}}};
  return k;
}

KernelSpec example_reverse_rows_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_reverse_rows", ir::Mode::Reduction, {"x", "y", "n"},
                                MTILE_FLOAT_VARIANTS(example_reverse_rows));
  k.family = "examples";
  k.summary = "y[r, i] = x[r, n - 1 - i] through threadgroup memory filled by copy_async";
  using rule::var;
  rule::Expr n = var("n");
  k.dims = {"rows", "n"};
  k.config = {{"threads", 256}};
  k.dispatch = {.grid = var("rows"), .tpg = var("threads")};
  k.preconditions = spec::one_threadgroup_per_row();
  for (rule::Expr e : {n >= 1, n <= kMaxRow, n % 8 == 0, var("tpg") == var("threads")}) k.preconditions.push_back(e);
  k.sizes = {{"x", var("rows") * n}, {"y", var("rows") * n}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    auto& y = t["y"];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t i = 0; i < n; ++i) y[r * n + i] = x[r * n + n - 1 - i];
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"n", 8}}, {{"rows", 3}, {"n", 1000}}, {{"rows", 2}, {"n", 2048}}};
  return k;
}

}  // namespace mtile::lib
