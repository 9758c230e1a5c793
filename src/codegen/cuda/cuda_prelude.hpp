// The CUDA prelude every generated kernel starts with. Self-contained for NVRTC (no #include);
// guarded so that several kernels can share one translation unit.
#pragma once

namespace mtile::codegen {

inline constexpr const char* kCudaPrelude = R"(#ifndef MTILE_CUDA_PRELUDE
#define MTILE_CUDA_PRELUDE
// f16 and bf16 live in memory as 16-bit patterns and in registers as float, rounded to their type
// (nearest even) after every operation, as the CPU engine does (docs/IR.md).
#define MT_FN __device__ __forceinline__
MT_FN float mt_f16_to_f32(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
MT_FN unsigned short mt_f32_to_f16(float f) {
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
MT_FN float mt_bf16_to_f32(unsigned short h) { return __uint_as_float((unsigned int)h << 16); }
MT_FN unsigned short mt_f32_to_bf16(float f) {
#if __CUDA_ARCH__ >= 800
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else  // no bf16 conversion instruction before sm_80: round to nearest even by hand
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
#endif
}
MT_FN float mt_round_f16(float f) { return mt_f16_to_f32(mt_f32_to_f16(f)); }
MT_FN float mt_round_bf16(float f) { return mt_bf16_to_f32(mt_f32_to_bf16(f)); }
// fp8 in memory (docs/IR.md): round to nearest even, saturate to the largest finite value, NaN
// stays NaN. e4m3 is the "fn" variant (no infinities, largest 448), e5m2 IEEE-like (largest 57344).
MT_FN unsigned char mt_f32_to_f8(float f, int mbits, int bias, float maxv, unsigned char nan) {
  unsigned int u = __float_as_uint(f);
  unsigned char sign = (unsigned char)((u >> 24) & 0x80u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return sign | nan;
  float a = fminf(fabsf(f), maxv);  // saturate, infinities included
  if (a == 0.0f) return sign;
  int e = max(ilogbf(a), 1 - bias);
  float q = ldexpf(1.0f, e - mbits);
  float r = rintf(a / q) * q;  // round to nearest even; exact: a power-of-two scale
  if (r > maxv) r = maxv;
  if (r == 0.0f) return sign;
  if (r < ldexpf(1.0f, 1 - bias)) return sign | (unsigned char)(r / ldexpf(1.0f, 1 - bias - mbits));
  int e2 = ilogbf(r);
  unsigned int mant = (unsigned int)(r / ldexpf(1.0f, e2 - mbits)) - (1u << mbits);
  return sign | (unsigned char)(((unsigned int)(e2 + bias) << mbits) | mant);
}
MT_FN float mt_f8_to_f32(unsigned char b, int mbits, int bias, bool ieee) {
  unsigned int exp = (b & 0x7fu) >> mbits, mant = b & ((1u << mbits) - 1u), top = (1u << (7 - mbits)) - 1u;
  float v;
  if (ieee && exp == top) v = mant ? __uint_as_float(0x7fc00000u) : __uint_as_float(0x7f800000u);
  else if (!ieee && exp == top && mant == (1u << mbits) - 1u) v = __uint_as_float(0x7fc00000u);
  else if (exp == 0) v = ldexpf((float)mant, 1 - bias - mbits);
  else v = ldexpf(1.0f + (float)mant / (float)(1u << mbits), (int)exp - bias);
  return (b & 0x80u) ? -v : v;
}
MT_FN unsigned char mt_f32_to_f8e4m3(float f) { return mt_f32_to_f8(f, 3, 7, 448.0f, 0x7f); }
MT_FN unsigned char mt_f32_to_f8e5m2(float f) { return mt_f32_to_f8(f, 2, 15, 57344.0f, 0x7e); }
MT_FN float mt_f8e4m3_to_f32(unsigned char b) { return mt_f8_to_f32(b, 3, 7, false); }
MT_FN float mt_f8e5m2_to_f32(unsigned char b) { return mt_f8_to_f32(b, 2, 15, true); }
// A value's bits as another type of the same width, through CUDA's reinterpreting intrinsics
// (NVRTC has no memcpy builtin); integers keep their bits under static_cast.
MT_FN unsigned int mt_bits(float v) { return __float_as_uint(v); }
MT_FN unsigned int mt_bits(unsigned int v) { return v; }
MT_FN unsigned int mt_bits(int v) { return static_cast<unsigned int>(v); }
MT_FN unsigned long long mt_bits(unsigned long long v) { return v; }
MT_FN unsigned long long mt_bits(long long v) { return static_cast<unsigned long long>(v); }
template <class To>
MT_FN To mt_from_bits(unsigned int b) { return static_cast<To>(b); }
template <>
MT_FN float mt_from_bits<float>(unsigned int b) { return __uint_as_float(b); }
template <class To>
MT_FN To mt_from_bits(unsigned long long b) { return static_cast<To>(b); }
template <class To, class From>
MT_FN To mt_bitcast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bitcast needs one width");
  return mt_from_bits<To>(mt_bits(v));
}
// Simdgroup reductions as the IR defines them: an xor butterfly over lane masks 16, 8, 4, 2, 1,
// v = op(v, v of lane ^ m), so that every lane ends with the same bits.
#define MT_BUTTERFLY(name, T, combine)          \
  MT_FN T name(T v) {                           \
    for (int m = 16; m >= 1; m >>= 1) {         \
      T o = __shfl_xor_sync(0xffffffffu, v, m); \
      v = combine;                              \
    }                                           \
    return v;                                   \
  }
MT_BUTTERFLY(mt_simd_sum_f32, float, v + o)
MT_BUTTERFLY(mt_simd_sum_f16, float, mt_round_f16(v + o))
MT_BUTTERFLY(mt_simd_sum_bf16, float, mt_round_bf16(v + o))
MT_BUTTERFLY(mt_simd_sum_u32, unsigned int, v + o)
MT_BUTTERFLY(mt_simd_sum_i32, int, (int)((unsigned int)v + (unsigned int)o))
MT_BUTTERFLY(mt_simd_max_f32, float, fmaxf(v, o))
MT_BUTTERFLY(mt_simd_max_f16, float, fmaxf(v, o))
MT_BUTTERFLY(mt_simd_max_bf16, float, fmaxf(v, o))
MT_BUTTERFLY(mt_simd_max_u32, unsigned int, v > o ? v : o)
MT_BUTTERFLY(mt_simd_max_i32, int, v > o ? v : o)
MT_BUTTERFLY(mt_simd_min_f32, float, fminf(v, o))
MT_BUTTERFLY(mt_simd_min_f16, float, fminf(v, o))
MT_BUTTERFLY(mt_simd_min_bf16, float, fminf(v, o))
MT_BUTTERFLY(mt_simd_min_u32, unsigned int, v < o ? v : o)
MT_BUTTERFLY(mt_simd_min_i32, int, v < o ? v : o)
MT_BUTTERFLY(mt_simd_sum_u64, unsigned long long, v + o)
MT_BUTTERFLY(mt_simd_sum_i64, long long, (long long)((unsigned long long)v + (unsigned long long)o))
MT_BUTTERFLY(mt_simd_max_u64, unsigned long long, v > o ? v : o)
MT_BUTTERFLY(mt_simd_max_i64, long long, v > o ? v : o)
MT_BUTTERFLY(mt_simd_min_u64, unsigned long long, v < o ? v : o)
MT_BUTTERFLY(mt_simd_min_i64, long long, v < o ? v : o)
#undef MT_BUTTERFLY
#endif  // MTILE_CUDA_PRELUDE
)";

}  // namespace mtile::codegen
