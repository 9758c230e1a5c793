// The DSL's matrix fragments (mtile/dsl_matrix.hpp): loaders and the storer, each lane's addresses
// from simd_lane() and the layout of mtile/mma_layout.hpp. `mma` itself is in tracer.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "mtile/dsl_matrix.hpp"

namespace mtile::dsl {

namespace L = mma_layout;

MmaAcc mma_zero() {
  MmaAcc z;
  for (Val& v : z.v) v = lit(0.0f);
  return z;
}

MmaAccVar::MmaAccVar(const MmaAcc& init, SourceLoc loc) {
  for (size_t i = 0; i < v_.size(); ++i) v_[i] = std::make_unique<Var>(init.v[i], loc);
}

MmaAccVar& MmaAccVar::operator=(const MmaAcc& v) {
  for (size_t i = 0; i < v_.size(); ++i) *v_[i] = v.v[i];
  return *this;
}

MmaAcc MmaAccVar::get() const {
  MmaAcc out;
  for (size_t i = 0; i < v_.size(); ++i) out.v[i] = v_[i]->get();
  return out;
}

U32 core_matrix_index(U32 r, U32 k, uint32_t k_extent) {
  const Val &rv = r.val, &kv = k.val;
  return rv / 8u * (8u * k_extent) + kv / 8u * 64u + rv % 8u * 8u + kv % 8u;
}

CoreMatrices core_matrices(U32 first, U32 r0, U32 k0, uint32_t k_extent) {
  return {first.val + core_matrix_index(r0, k0, k_extent).val, lit(64u), lit(8u * k_extent)};
}

U32 swizzle128_index(U32 r, U32 k) {
  const Val &rv = r.val, &kv = k.val;
  return rv * 64u + (kv ^ rv % 8u * 8u);
}

CoreMatrices swizzle128_rows(U32 first, U32 r0, U32 k0) {
  return {first.val + r0.val * 64u + k0.val, lit(8u), lit(512u), 128};
}

CoreMatrices swizzle128_rows_kn(U32 first, U32 k0, uint32_t n_block_stride) {
  return {first.val + k0.val * 64u, lit(512u), lit(n_block_stride), 128, true};
}

MmaAcc WarpgroupAcc::tile(uint32_t j) const {
  if (size_t{j} * L::kCElements + L::kCElements > v.size())
    detail::trace_error(fmt::format("WarpgroupAcc::tile({}): the accumulator is 64 x {}, {} tiles of 8 columns", j,
                                    v.size() * 2, v.size() / L::kCElements));
  MmaAcc out;
  for (uint32_t e = 0; e < L::kCElements; ++e) out.v[e] = v[j * L::kCElements + e];
  return out;
}

WarpgroupAcc warpgroup_acc_zero(uint32_t n) {
  return {std::vector<Val>(n / 2, lit(0.0f))};
}

WarpgroupAccVar::WarpgroupAccVar(const WarpgroupAcc& init, SourceLoc loc) {
  for (const Val& v : init.v) v_.push_back(std::make_unique<Var>(v, loc));
}

WarpgroupAccVar& WarpgroupAccVar::operator=(const WarpgroupAcc& v) {
  for (size_t i = 0; i < v_.size(); ++i) *v_[i] = v.v.at(i);
  return *this;
}

WarpgroupAcc WarpgroupAccVar::get() const {
  WarpgroupAcc out;
  for (const auto& v : v_) out.v.push_back(v->get());
  return out;
}

MatrixRef::MatrixRef(ir::MemSpace space, int slot, ScalarType elem, const Val& ld, const Val* offset)
    : space_(space), slot_(slot), elem_(elem), ld_(ld) {
  if (offset) {
    offset_ = *offset;
    has_offset_ = true;
  }
}
MatrixRef::MatrixRef(const Tensor& t, U32 ld) : MatrixRef(ir::MemSpace::Device, t.index, t.elem, ld.val, nullptr) {}
MatrixRef::MatrixRef(const Tensor& t, U32 ld, U32 offset)
    : MatrixRef(ir::MemSpace::Device, t.index, t.elem, ld.val, &offset.val) {}
MatrixRef::MatrixRef(const TgArray& a, U32 ld) : MatrixRef(ir::MemSpace::Threadgroup, a.id, a.elem, ld.val, nullptr) {}
MatrixRef::MatrixRef(const TgArray& a, U32 ld, U32 offset)
    : MatrixRef(ir::MemSpace::Threadgroup, a.id, a.elem, ld.val, &offset.val) {}
MatrixRef::MatrixRef(const TgArray2D& a) : MatrixRef(a.flat, a.cols) {}

MatrixRef MatrixRef::bounded(U32 rows, U32 cols) const {
  MatrixRef m = bounded_rows(rows);
  m.cols_ = cols.val;
  m.cols_bounded_ = true;
  return m;
}

MatrixRef MatrixRef::bounded_rows(U32 rows) const {
  MatrixRef m = *this;
  m.rows_ = rows.val;
  m.rows_bounded_ = true;
  return m;
}

MatrixRef MatrixRef::aligned_rows() const {
  MatrixRef m = *this;
  m.aligned_rows_ = true;
  return m;
}

MatrixRef MatrixRef::swizzled128(U32 block_stride) const {
  if (space_ != ir::MemSpace::Threadgroup)
    detail::trace_error("MatrixRef::swizzled128 of device memory: copy_tile lands swizzled rows in threadgroup memory");
  MatrixRef m = aligned_rows();
  m.swizzled_ = true;
  m.block_stride_ = block_stride.val;
  return m;
}

bool MatrixRef::loads_whole_matrices() const {
  return aligned_rows_ && space_ == ir::MemSpace::Threadgroup && !is_bounded() &&
         (elem_ == ScalarType::bf16 || elem_ == ScalarType::f16);
}

MemRef MatrixRef::at(const Val& r, const Val& c) const {
  Val index = swizzled_ ? c / 64u * block_stride_ + swizzle128_index(r, c % 64u).val : r * ld_ + c;
  if (has_offset_) index = offset_ + index;
  return {space_, slot_, elem_, index};
}

Val MatrixRef::inside(const Val& r, const Val& c) const {
  if (!is_bounded()) detail::trace_error("MatrixRef::inside of a matrix without bounds (see MatrixRef::bounded)");
  if (!cols_bounded_) return r < rows_;
  if (!rows_bounded_) return c < cols_;
  return r < rows_ && c < cols_;
}

namespace {

// Element (r, c) of `m` (0 outside a bounded matrix).
Val read(const MatrixRef& m, const Val& r, const Val& c, SourceLoc loc) {
  if (!m.is_bounded()) return load(m.at(r, c), loc);
  return load(m.at(r, c), m.inside(r, c), lit(value_type(m.elem()), 0.0), loc);
}

void check_fragment_type(const MatrixRef& m, const char* what, SourceLoc loc) {
  detail::note_location(loc);
  if (m.elem() != ScalarType::bf16 && m.elem() != ScalarType::f16)
    detail::trace_error(
        fmt::format("{} from memory of {}: A and B fragments are bf16 or f16", what, type_name(m.elem())));
}

// Whole 8 x 8 matrices (IR load_matrix), this lane giving the index of element (r, c); the
// elements it gets, matrix j's pair at 2j and 2j + 1 (docs/IR.md).
std::vector<Val> load_matrices(const MatrixRef& m, const Val& r, const Val& c, uint32_t matrices, bool transposed,
                               SourceLoc loc) {
  return detail::load_matrix(m.at(r, c), matrices, transposed, loc);
}

}  // namespace

// With load_matrix, lanes 8j .. 8j + 7 give the rows of matrix j: A's four are rows 0-7 and 8-15 at
// k0, then at k0 + 8, so that matrix j's pair is A's elements 2j, 2j + 1 (mtile/mma_layout.hpp).
MmaA load_mma_a(const MatrixRef& a, U32 r0, U32 k0, SourceLoc loc) {
  check_fragment_type(a, "load_mma_a", loc);
  Val lane = simd_lane();
  MmaA out;
  if (a.loads_whole_matrices()) {
    std::vector<Val> v = load_matrices(a, r0.val + lane % 16u, k0.val + lane / 16u * 8u, 4, false, loc);
    std::copy(v.begin(), v.end(), out.v.begin());
    return out;
  }
  for (uint32_t i = 0; i < L::kAElements; ++i)
    out.v[i] = read(a, r0.val + L::a_row(lane, i), k0.val + L::a_col(lane, i), loc);
  return out;
}

// B from n-major memory: matrix 0 is rows n0 .. n0 + 7 at k0, matrix 1 the same at k0 + 8 (and for
// a second tile, matrices 2 and 3 at n0 + 8).
MmaB load_mma_b_nk(const MatrixRef& w, U32 n0, U32 k0, SourceLoc loc) {
  check_fragment_type(w, "load_mma_b_nk", loc);
  Val lane = simd_lane();
  MmaB out;
  if (w.loads_whole_matrices()) {
    std::vector<Val> v = load_matrices(w, n0.val + lane % 8u, k0.val + lane / 8u % 2u * 8u, 2, false, loc);
    std::copy(v.begin(), v.end(), out.v.begin());
    return out;
  }
  for (uint32_t i = 0; i < L::kBElements; ++i)
    out.v[i] = read(w, n0.val + L::b_n(lane, i), k0.val + L::b_k(lane, i), loc);
  return out;
}

std::array<MmaB, 2> load_mma_b_nk_x2(const MatrixRef& w, U32 n0, U32 k0, SourceLoc loc) {
  if (!w.loads_whole_matrices()) return {load_mma_b_nk(w, n0, k0, loc), load_mma_b_nk(w, n0.val + 8u, k0, loc)};
  check_fragment_type(w, "load_mma_b_nk_x2", loc);
  Val lane = simd_lane();
  std::vector<Val> v =
      load_matrices(w, n0.val + lane % 8u + lane / 16u * 8u, k0.val + lane / 8u % 2u * 8u, 4, false, loc);
  std::array<MmaB, 2> out;
  for (uint32_t i = 0; i < 8; ++i) out[i / 4].v[i % 4] = v[i];
  return out;
}

// B from k-major memory, transposed as it loads: matrix 0 is rows k0 .. k0 + 7 at n0, matrix 1
// rows k0 + 8 .. k0 + 15 (and for a second tile, matrices 2 and 3 at n0 + 8).
MmaB load_mma_b_kn(const MatrixRef& b, U32 k0, U32 n0, SourceLoc loc) {
  check_fragment_type(b, "load_mma_b_kn", loc);
  Val lane = simd_lane();
  MmaB out;
  if (b.loads_whole_matrices()) {
    std::vector<Val> v = load_matrices(b, k0.val + lane % 16u, n0.val, 2, true, loc);
    std::copy(v.begin(), v.end(), out.v.begin());
    return out;
  }
  for (uint32_t i = 0; i < L::kBElements; ++i)
    out.v[i] = read(b, k0.val + L::b_k(lane, i), n0.val + L::b_n(lane, i), loc);
  return out;
}

std::array<MmaB, 2> load_mma_b_kn_x2(const MatrixRef& b, U32 k0, U32 n0, SourceLoc loc) {
  if (!b.loads_whole_matrices()) return {load_mma_b_kn(b, k0, n0, loc), load_mma_b_kn(b, k0, n0.val + 8u, loc)};
  check_fragment_type(b, "load_mma_b_kn_x2", loc);
  Val lane = simd_lane();
  std::vector<Val> v = load_matrices(b, k0.val + lane % 16u, n0.val + lane / 16u * 8u, 4, true, loc);
  std::array<MmaB, 2> out;
  for (uint32_t i = 0; i < 8; ++i) out[i / 4].v[i % 4] = v[i];
  return out;
}

MmaAcc load_mma_acc(const MatrixRef& c, U32 r0, U32 n0, SourceLoc loc) {
  detail::note_location(loc);
  if (!is_float(value_type(c.elem())))
    detail::trace_error(
        fmt::format("load_mma_acc from memory of {}: an accumulator is read from float memory", type_name(c.elem())));
  Val lane = simd_lane();
  MmaAcc out;
  for (uint32_t i = 0; i < L::kCElements; ++i)
    out.v[i] = read(c, r0.val + L::c_row(lane, i), n0.val + L::c_col(lane, i), loc).cast(ScalarType::f32);
  return out;
}

void store_mma_acc(const MatrixRef& c, U32 r0, U32 n0, const MmaAcc& acc, SourceLoc loc) {
  Val lane = simd_lane();
  ScalarType t = value_type(c.elem());
  for (uint32_t i = 0; i < L::kCElements; ++i) {
    Val r = r0.val + L::c_row(lane, i), col = n0.val + L::c_col(lane, i);
    Val v = acc.v[i].cast(t);
    if (c.is_bounded())
      store(c.at(r, col), v, c.inside(r, col), loc);
    else
      store(c.at(r, col), v, loc);
  }
}

}  // namespace mtile::dsl
