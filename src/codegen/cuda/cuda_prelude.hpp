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
#undef MT_BUTTERFLY
#endif  // MTILE_CUDA_PRELUDE
)";

}  // namespace mtile::codegen
