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

}  // namespace mtile::codegen
