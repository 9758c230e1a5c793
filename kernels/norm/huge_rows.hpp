// Rows whose f32 sum of squares overflows (|x| from about 2^64 / sqrt(n), which bf16 and f32 can
// hold and f16 can't): the plain inverse RMS is then rsqrt(inf) = 0, and every output 0, where the
// float64 reference gives O(1) values. The norm kernels recompute it for such a row with x scaled
// by a power of two that keeps every square below 16, and only for such a row: the test is a
// branch on a value every thread of the threadgroup shares, which the common path never takes
// (docs/writing-kernels.md, "Rows of huge values").
#pragma once
#include <type_traits>

#include "kernels/norm/norm.hpp"

namespace mtile::lib {

// Whether a row of T can overflow the f32 sum of squares: not f16's (65504^2 * 2^32 < 2^127).
template <class T>
constexpr bool sum_of_squares_can_overflow = !std::is_same_v<T, dsl::f16>;

// 2^-E for the exponent E of `m` (the row's largest |x|), at least 2^-126 so that it is normal:
// |x| * 2^-E < 4 for every x of the row.
inline dsl::Val inverse_power_of_two(const dsl::Val& m) {
  using namespace dsl;
  Val field = (bitcast<u32>(m) >> 23u) & 0xffu;                          // E + 127
  Val scaled_field = select(field >= 253u, lit(1u), lit(254u) - field);  // -E + 127
  return bitcast<f32>(scaled_field << 23u);
}

// Who shares a row: the threadgroup (threadgroup reductions, mt_rms_inv_scalar), or one simdgroup
// (simd_max, simd_sum: a head of rms_norm_per_head).
enum class RowScope { Threadgroup, Simdgroup };

// The inverse RMS of the row: `rms` as computed, or where it is 0 (the sum of squares overflowed),
// s * rsqrt(sum((x * s)^2) / n + eps * s * s) with s from the row's largest |x|. `for_each(fn)`
// calls fn(v) for every element v this thread holds (0 for the ones it holds none of); `eps` is an
// In<f32> eps_buf tensor or a Scalar<f32> value.
template <class ForEach>
dsl::Val rescue_huge_row(const dsl::Val& rms, ForEach for_each, const dsl::CallArg& eps, const dsl::Constexpr& n,
                         RowScope scope = RowScope::Threadgroup) {
  using namespace dsl;
  const bool whole_threadgroup = scope == RowScope::Threadgroup;
  Var inv(rms);
  if_(inv.get() == 0.0f, [&] {  // the local, not `rms`: its one use is then the local's initial value
    Var largest(lit(0.0f));
    for_each([&](const Val& v) { largest = max(largest.get(), abs(v)); });
    Val row_max = whole_threadgroup ? reduce_max(largest.get()) : simd_max(largest.get());
    Val s = named("row_scale", inverse_power_of_two(row_max));
    Var ssq(lit(0.0f));
    for_each([&](const Val& v) {
      Val scaled = v * s;
      ssq = fma(scaled, scaled, ssq.get());
    });
    Val eps_value = eps.tensor ? load((*eps.tensor)[0u]) : eps.value;  // an eps_buf tensor or a Scalar
    Val scaled_eps = eps_value * s * s;
    inv = s * (whole_threadgroup ? call(mt_rms_inv_scalar_def(), {ssq.get(), scaled_eps, n})
                                 : rsqrt(simd_sum(ssq.get()) / n.cast<f32>() + scaled_eps));
  });
  return inv.get();
}

}  // namespace mtile::lib
