// The DSL's matrix fragments (mtile/dsl_matrix.hpp): loaders and the storer, each lane's addresses
// from simd_lane() and the layout of mtile/mma_layout.hpp. `mma` itself is in tracer.cpp.
#include <fmt/format.h>

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

MemRef MatrixRef::at(const Val& r, const Val& c) const {
  Val index = r * ld_ + c;
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

}  // namespace

MmaA load_mma_a(const MatrixRef& a, U32 r0, U32 k0, SourceLoc loc) {
  check_fragment_type(a, "load_mma_a", loc);
  Val lane = simd_lane();
  MmaA out;
  for (uint32_t i = 0; i < L::kAElements; ++i)
    out.v[i] = read(a, r0.val + L::a_row(lane, i), k0.val + L::a_col(lane, i), loc);
  return out;
}

MmaB load_mma_b_nk(const MatrixRef& w, U32 n0, U32 k0, SourceLoc loc) {
  check_fragment_type(w, "load_mma_b_nk", loc);
  Val lane = simd_lane();
  MmaB out;
  for (uint32_t i = 0; i < L::kBElements; ++i)
    out.v[i] = read(w, n0.val + L::b_n(lane, i), k0.val + L::b_k(lane, i), loc);
  return out;
}

MmaB load_mma_b_kn(const MatrixRef& b, U32 k0, U32 n0, SourceLoc loc) {
  check_fragment_type(b, "load_mma_b_kn", loc);
  Val lane = simd_lane();
  MmaB out;
  for (uint32_t i = 0; i < L::kBElements; ++i)
    out.v[i] = read(b, k0.val + L::b_k(lane, i), n0.val + L::b_n(lane, i), loc);
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
