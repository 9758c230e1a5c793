// The MSL preamble every generated kernel starts with (after metal_stdlib).
#pragma once

namespace mtile::codegen {

inline constexpr const char* kMslPreamble =
    R"(// f16 and bf16 values are computed in float and rounded to their type (nearest even) after every
// operation, the rule of the CPU engine and the CUDA backend (docs/IR.md). bf16 rounding is done
// by hand so that Metal 3.0, which has no bfloat, rounds the same way.
// simd_sum/simd_max/simd_min leave the combining order to Metal; the IR defines an xor butterfly
// (masks 16, 8, 4, 2, 1), so float sums may differ from the other backends in the last bits.
// Compile with fast math off (MTLMathModeSafe): the code relies on IEEE NaN and infinity.
inline float mt_round_f16(float x) { return float(half(x)); }
inline ushort mt_f32_to_bf16(float x) {
  uint u = as_type<uint>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return ushort((u >> 16) | 0x40u);  // quiet NaN
  return ushort((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float mt_bf16_to_f32(ushort h) { return as_type<float>(uint(h) << 16); }
inline float mt_round_bf16(float x) { return mt_bf16_to_f32(mt_f32_to_bf16(x)); }
// Float to integer: toward zero, saturating, NaN -> 0 (as CUDA's __float2uint_rz).
inline uint mt_f32_to_u32(float x) {
  if ((as_type<uint>(x) & 0x7fffffffu) > 0x7f800000u || x <= 0.0f) return 0u;
  return x >= 4294967296.0f ? 0xffffffffu : uint(x);
}
inline int mt_f32_to_i32(float x) {
  if ((as_type<uint>(x) & 0x7fffffffu) > 0x7f800000u) return 0;
  if (x <= -2147483648.0f) return as_type<int>(0x80000000u);
  return x >= 2147483648.0f ? 0x7fffffff : int(x);
}
inline ulong mt_f32_to_u64(float x) {
  if ((as_type<uint>(x) & 0x7fffffffu) > 0x7f800000u || x <= 0.0f) return 0ul;
  return x >= 18446744073709551616.0f ? 0xfffffffffffffffful : ulong(x);
}
inline long mt_f32_to_i64(float x) {
  if ((as_type<uint>(x) & 0x7fffffffu) > 0x7f800000u) return 0l;
  if (x <= -9223372036854775808.0f) return as_type<long>(0x8000000000000000ul);
  return x >= 9223372036854775808.0f ? 0x7fffffffffffffffl : long(x);
}
// fp8 in memory: round to nearest even, saturate to the largest finite value, NaN stays NaN.
inline uchar mt_f32_to_f8(float f, int mbits, int bias, float maxv, uchar nan) {
  uint u = as_type<uint>(f);
  uchar sign = uchar((u >> 24) & 0x80u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return sign | nan;
  float a = min(fabs(f), maxv);
  if (a == 0.0f) return sign;
  int e = max(ilogb(a), 1 - bias);
  float q = ldexp(1.0f, e - mbits);
  float r = min(rint(a / q) * q, maxv);
  if (r == 0.0f) return sign;
  if (r < ldexp(1.0f, 1 - bias)) return sign | uchar(r / ldexp(1.0f, 1 - bias - mbits));
  int e2 = ilogb(r);
  uint mant = uint(r / ldexp(1.0f, e2 - mbits)) - (1u << mbits);
  return sign | uchar((uint(e2 + bias) << mbits) | mant);
}
inline float mt_f8_to_f32(uchar b, int mbits, int bias, bool ieee) {
  uint e = (b & 0x7fu) >> mbits, m = b & ((1u << mbits) - 1u), top = (1u << (7 - mbits)) - 1u;
  float v;
  if (ieee && e == top) v = m ? as_type<float>(0x7fc00000u) : as_type<float>(0x7f800000u);
  else if (!ieee && e == top && m == (1u << mbits) - 1u) v = as_type<float>(0x7fc00000u);
  else if (e == 0) v = ldexp(float(m), 1 - bias - mbits);
  else v = ldexp(1.0f + float(m) / float(1u << mbits), int(e) - bias);
  return (b & 0x80u) ? -v : v;
}
inline uchar mt_f32_to_f8e4m3(float f) { return mt_f32_to_f8(f, 3, 7, 448.0f, uchar(0x7f)); }
inline uchar mt_f32_to_f8e5m2(float f) { return mt_f32_to_f8(f, 2, 15, 57344.0f, uchar(0x7e)); }
inline float mt_f8e4m3_to_f32(uchar b) { return mt_f8_to_f32(b, 3, 7, false); }
inline float mt_f8e5m2_to_f32(uchar b) { return mt_f8_to_f32(b, 2, 15, true); }
// Metal has no log1p and expm1: the accurate forms of Goldberg and Kahan.
inline float mt_log1p(float x) {
  float u = 1.0f + x;
  return u == 1.0f ? x : precise::log(u) * x / (u - 1.0f);
}
inline float mt_expm1(float x) {
  float u = precise::exp(x);
  if (u == 1.0f) return x;
  if (u - 1.0f == -1.0f) return -1.0f;
  return (u - 1.0f) * x / precise::log(u);
}
// exp2 with results below 2^-126 flushed to +0 (docs/IR.md).
inline float mt_exp2_ftz(float x) {
  float r = precise::exp2(x);
  return r < 1.17549435e-38f ? 0.0f : r;  // FLT_MIN: the least normal float
}
// Compare-and-exchange that gives the old value, as CUDA's atomicCAS.
template <class A, class T>
inline T mt_atomic_cas(A obj, T expected, T desired) {
  T seen = expected;
  while (!atomic_compare_exchange_weak_explicit(obj, &seen, desired, memory_order_relaxed, memory_order_relaxed) &&
         seen == expected) {
  }
  return seen;
}
// Metal has no erf. |x| < 1: its Taylor series in Horner form; else 1 - erfc(|x|) with erfc from
// its continued fraction (40 terms). Within 2 ulp of the correctly rounded erf in f32.
inline float mt_erf(float x) {
  float a = fabs(x);
  if (!(a < 4.0f)) return a != a ? x : copysign(1.0f, x);  // erf(4) rounds to 1
  float x2 = a * a;
  if (a < 1.0f) {
    float s = -1.636584469e-07f;
    s = fma(s, x2, 1.646211437e-06f);
    s = fma(s, x2, -1.492565036e-05f);
    s = fma(s, x2, 1.205533298e-04f);
    s = fma(s, x2, -8.548327023e-04f);
    s = fma(s, x2, 5.223977625e-03f);
    s = fma(s, x2, -2.686617065e-02f);
    s = fma(s, x2, 1.128379167e-01f);
    s = fma(s, x2, -3.761263890e-01f);
    s = fma(s, x2, 1.128379167e+00f);
    return x * s;
  }
  float e = precise::exp(-x2) * (1.0f - fma(a, a, -x2));  // exp(-a*a), a*a's rounding error undone
  float f = a;
  for (int k = 40; k >= 1; --k) f = a + 0.5f * float(k) / f;
  return copysign(1.0f - 0.5641895835f * e / f, x);
}
)";

// Mma (docs/IR.md): PTX's m16n8k16 with the fragments held per lane (mtile/mma_layout.hpp), on
// Metal's 8 x 8 simdgroup matrices. Included where a kernel uses Mma.
inline constexpr const char* kMslMmaPreamble =
    R"(// Mma: D = A B + C, m16n8k16, each lane passing its elements in PTX's fragment layout (lane l,
// g = l / 4, t = l % 4: A element i at row g + 8 ((i >> 1) & 1), col 2t + (i & 1) + 8 (i >> 2);
// B element i at k 2t + (i & 1) + 8 (i >> 1), n g; C and D element i at row g + 8 (i >> 1), col
// 2t + (i & 1)). Metal's 8 x 8 simdgroup_matrix gives lane l the elements (fm, fn) and (fm, fn + 1),
// q = l / 4, fm = (q & 4) + (l / 2) % 4, fn = (q & 2) * 2 + (l % 2) * 2 (MLX's layout). A is 2 x 2
// such tiles, B and C 2 x 1: simd_shuffle brings each element from the lane that holds it in PTX's
// layout to the lane that needs it in Metal's, and D back. The matrices are float (products of
// bf16 or f16 values are exact in f32); Metal sums in an order it leaves open, so D may differ from
// the CPU engine's (one rounding of an f64 sum) in the last bits.
inline float4 mt_mma_m16n8k16(float a0, float a1, float a2, float a3, float a4, float a5, float a6, float a7,
                              float b0, float b1, float b2, float b3, float c0, float c1, float c2, float c3,
                              uint lane) {
  const float as[8] = {a0, a1, a2, a3, a4, a5, a6, a7}, bs[4] = {b0, b1, b2, b3}, cs[4] = {c0, c1, c2, c3};
  const ushort q = ushort(lane / 4), fm = ushort((q & 4) + (lane / 2) % 4), fn = ushort((q & 2) * 2 + (lane % 2) * 2);
  // A's element (8 ti + fm, 8 tj + fn + e) is element e + 2 ti + 4 tj of PTX lane 4 fm + fn / 2, and
  // C's (8 ti + fm, fn + e) its element e + 2 ti.
  const ushort ac = ushort(4 * fm + fn / 2);
  // B's element (8 tk + fm, fn + e) is element (fm & 1) + 2 tk of PTX lane 4 (fn + e) + fm / 2.
  const ushort b_lane = ushort(4 * fn + fm / 2);
  simdgroup_matrix<float, 8, 8> a[2][2], b[2], c[2], d[2];
  for (ushort ti = 0; ti < 2; ++ti)
    for (ushort e = 0; e < 2; ++e) {
      a[ti][0].thread_elements()[e] = simd_shuffle(as[e + 2 * ti], ac);
      a[ti][1].thread_elements()[e] = simd_shuffle(as[e + 2 * ti + 4], ac);
      c[ti].thread_elements()[e] = simd_shuffle(cs[e + 2 * ti], ac);
      const float even = simd_shuffle(bs[2 * ti], ushort(b_lane + 4 * e));
      const float odd = simd_shuffle(bs[2 * ti + 1], ushort(b_lane + 4 * e));
      b[ti].thread_elements()[e] = (fm & 1) ? odd : even;
    }
  for (ushort ti = 0; ti < 2; ++ti) {
    simdgroup_multiply_accumulate(d[ti], a[ti][0], b[0], c[ti]);
    simdgroup_multiply_accumulate(d[ti], a[ti][1], b[1], d[ti]);
  }
  // D's element i of lane 4g + t, (g + 8 (i >> 1), 2t + (i & 1)), is element i & 1 of tile i >> 1 in
  // the Metal lane with fm = g and fn = 2t.
  const ushort g = ushort(lane / 4), t = ushort(lane % 4);
  const ushort from = ushort(16 * (g >> 2) + 8 * (t >> 1) + 4 * ((g >> 1) & 1) + 2 * (g & 1) + (t & 1));
  return float4(simd_shuffle(d[0].thread_elements()[0], from), simd_shuffle(d[0].thread_elements()[1], from),
                simd_shuffle(d[1].thread_elements()[0], from), simd_shuffle(d[1].thread_elements()[1], from));
}
)";

// LoadMatrix (docs/IR.md) without ldmatrix: lane l's pair of matrix j is row l / 4, columns 2 (l % 4)
// and 2 (l % 4) + 1 of the row lane 8 j + l / 4 gives the index of (transposed: rows 2 (l % 4) and
// 2 (l % 4) + 1, column l / 4), read by l itself; word j holds it, the lower column in the low half.
inline constexpr const char* kMslLoadMatrixPreamble = R"(
struct mt_matrix1 { uint w[1]; };
struct mt_matrix2 { uint w[2]; };
struct mt_matrix4 { uint w[4]; };
template <typename T>
inline uint mt_matrix_pair(threadgroup const T* a, uint index, uint lane, uint j, bool trans) {
  const uint t = lane % 4, g = lane / 4;
  uint lo, hi;
  if (trans) {
    lo = as_type<ushort>(a[simd_shuffle(index, ushort(8 * j + 2 * t)) + g]);
    hi = as_type<ushort>(a[simd_shuffle(index, ushort(8 * j + 2 * t + 1)) + g]);
  } else {
    const uint r = simd_shuffle(index, ushort(8 * j + g));
    lo = as_type<ushort>(a[r + 2 * t]);
    hi = as_type<ushort>(a[r + 2 * t + 1]);
  }
  return lo | (hi << 16);
}
#define MT_LOAD_MATRIX(N, SUFFIX, TRANS)                                                              \
  template <typename T>                                                                               \
  inline mt_matrix##N mt_load_matrix_x##N##SUFFIX(threadgroup const T* a, uint index, uint lane) {    \
    mt_matrix##N m;                                                                                   \
    for (uint j = 0; j < N; ++j) m.w[j] = mt_matrix_pair(a, index, lane, j, TRANS);                   \
    return m;                                                                                         \
  }
MT_LOAD_MATRIX(1, , false)
MT_LOAD_MATRIX(2, , false)
MT_LOAD_MATRIX(4, , false)
MT_LOAD_MATRIX(1, _trans, true)
MT_LOAD_MATRIX(2, _trans, true)
MT_LOAD_MATRIX(4, _trans, true)
#undef MT_LOAD_MATRIX
)";

}  // namespace mtile::codegen
