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
// exp2 flushing results below 2^-126 to +0: one MUFU.EX2, where exp2f adds three instructions to
// keep subnormal results (docs/IR.md).
MT_FN float mt_exp2_ftz(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
// Every kernel's first statement. On sm_90+ the runtime launches generated kernels as programmatic
// dependents (PDL): a launch may begin while the kernel before it on the stream finishes, and this
// waits until that kernel has completed and its memory is visible. Elsewhere, and where a launch is
// not programmatic, it returns at once.
MT_FN void mt_wait_prior_grids() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
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

// Mma (docs/IR.md): PTX's m16n8k16 tensor-core multiply-accumulate, each lane passing its fragments
// (mtile/mma_layout.hpp). Pairs of 16-bit elements share a 32-bit register, element 2j in the low
// half. Values are already rounded to their type, so packing them loses nothing. Included where a
// kernel uses Mma or MmaAsync (A from registers); mtile refuses to compile them before sm_80.
inline constexpr const char* kCudaMmaPrelude = R"(#ifndef MTILE_CUDA_MMA
#define MTILE_CUDA_MMA
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "mtile: mma.sync m16n8k16 with bf16/f16 needs sm_80 or newer"
#endif
// An IR value of type bf16 is a bf16 number carried in a float: its low 16 bits are zero, so the
// pair packs by bit operations, which the compiler folds into the 16-bit loads that made them (a
// conversion instruction would stay: ptxas can't see through the inline asm of mt_f32_to_bf16).
MT_FN unsigned int mt_pack_bf16(float lo, float hi) {
  return (__float_as_uint(lo) >> 16) | (__float_as_uint(hi) & 0xffff0000u);
}
// f16 values need a conversion: one cvt.rn.f16x2.f32 a pair (exact, as they are f16 numbers).
MT_FN unsigned int mt_pack_f16(float lo, float hi) {
  unsigned int r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
// D = A B + C, A's and B's pairs of bf16 (f16 below) packed into words: {a01 a23 a45 a67}, {b01 b23}.
// Not volatile: it reads and writes registers only, so the compiler may schedule it between the
// fragment loads (which are volatile, to stay between their barriers).
MT_FN float4 mt_mma_m16n8k16_bf16(unsigned int a0, unsigned int a1, unsigned int a2, unsigned int a3,
                                 unsigned int b0, unsigned int b1, float c0, float c1, float c2, float c3) {
  float4 d;
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d.x), "=f"(d.y), "=f"(d.z), "=f"(d.w)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
  return d;
}
MT_FN float4 mt_mma_m16n8k16_f16(unsigned int a0, unsigned int a1, unsigned int a2, unsigned int a3,
                                 unsigned int b0, unsigned int b1, float c0, float c1, float c2, float c3) {
  float4 d;
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d.x), "=f"(d.y), "=f"(d.z), "=f"(d.w)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
  return d;
}
#endif  // MTILE_CUDA_MMA
)";

// LoadMatrix (docs/IR.md): ldmatrix, 1, 2 or 4 8 x 8 matrices of 16-bit elements from shared memory,
// each lane giving one row's address; word j of the result is this lane's pair of matrix j.
// Volatile, as CUTLASS has it, so that it stays between the barriers around it. sm_75 and newer.
// mma_async (docs/IR.md) as wgmma on sm_90a: each operand reaches wgmma through a 64-bit shared
// memory descriptor (bits 0-13 the address, 16-29 the k stride, 32-45 the row stride, each in 16
// bytes; 62-63 the swizzle, 1 for 128 bytes, whose k stride is unused); the accumulator's
// registers are the statement's own "+f" operands.
inline constexpr const char* kCudaMmaAsyncPrelude = R"(#ifndef MTILE_CUDA_MMA_ASYNC
#define MTILE_CUDA_MMA_ASYNC
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ != 900 || !defined(__CUDA_ARCH_FEAT_SM90_ALL))
#error "mtile: mma_async is wgmma, which needs sm_90a"
#endif
// The descriptor of &array[first]: strides in 16-bit elements, as the IR gives them; Swizzle 0 or
// 128 (bytes). The address field is the array's (16-byte aligned, below 2^18 as every shared
// address is) plus first / 8 in 16-byte units, added rather than converted from &array[first]:
// the array's part is the same for every wgmma of a loop, so each costs an add (SASS of
// attention_prefill's warpgroup loop: 566 -> 530 instructions a block). No field carries into the
// next: each value stays below its 14 bits; the upper word (row stride, swizzle) is a constant.
template <int Swizzle, class T>
MT_FN unsigned long long mt_wgmma_desc(const T* array, unsigned int first, unsigned int k_stride,
                                       unsigned int row_stride) {
  static_assert(sizeof(T) == 2, "mma_async reads 16-bit elements");
  unsigned int low = (static_cast<unsigned int>(__cvta_generic_to_shared(array)) >> 4) + first / 8u +
                     (((k_stride * 2u) >> 4) << 16);
  unsigned int high = ((row_stride * 2u) >> 4) | (Swizzle == 128 ? 1u << 30 : 0u);
  return (static_cast<unsigned long long>(high) << 32) | low;
}
// This thread's threadgroup writes (its waited async copies included) reach the async proxy that
// wgmma reads through, and its accumulator registers are ordered before the wgmmas that follow.
MT_FN void mt_mma_fence() {
  asm volatile("fence.proxy.async.shared::cta;\n\twgmma.fence.sync.aligned;" ::: "memory");
}
template <int Pending>
MT_FN void mt_mma_wait() {
  asm volatile("wgmma.commit_group.sync.aligned;\n\twgmma.wait_group.sync.aligned %0;" ::"n"(Pending) : "memory");
}
// An accumulator register is read only after the wait before it: the empty asm "writes" it there.
MT_FN void mt_fence_operand(float& r) {
  asm volatile("" : "+f"(r)::"memory");
}
MT_FN void mt_fence_operand(unsigned int& r) {
  asm volatile("" : "+r"(r)::"memory");
}
#endif  // MTILE_CUDA_MMA_ASYNC
)";

inline constexpr const char* kCudaMbarrierPrelude = R"(#ifndef MTILE_CUDA_MBARRIER
#define MTILE_CUDA_MBARRIER
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#error "mtile: mbarrier waits are mbarrier.try_wait, which needs sm_90"
#endif
MT_FN unsigned int mt_shared_address(const void* p) {
  return static_cast<unsigned int>(__cvta_generic_to_shared(p));
}
MT_FN void mt_mbarrier_init(void* bar, unsigned int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(mt_shared_address(bar)), "r"(count) : "memory");
}
MT_FN void mt_mbarrier_arrive(void* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(mt_shared_address(bar)) : "memory");
}
// Arrives once this thread's cp.asyncs so far are complete; noinc: the arrival counts against the
// count the barrier was initialized with, as a plain arrive does.
MT_FN void mt_mbarrier_arrive_after_copies(void* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(mt_shared_address(bar)) : "memory");
}
MT_FN void mt_mbarrier_wait(void* bar, unsigned int parity) {
  asm volatile(
      "{\n\t.reg .pred done;\nmt_wait:\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n\t"
      "@!done bra mt_wait;\n}" ::"r"(mt_shared_address(bar)),
      "r"(parity)
      : "memory");
}
// Arrives, and makes this phase also wait for `bytes` bytes of tile copies (complete_tx).
MT_FN void mt_mbarrier_arrive_expect(void* bar, unsigned int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(mt_shared_address(bar)), "r"(bytes)
               : "memory");
}
#endif  // MTILE_CUDA_MBARRIER
)";

// copy_tile: one TMA instruction a box (cp.async.bulk.tensor), its tensor map a __grid_constant__
// kernel parameter that the runtime encodes at launch (src/codegen/tile_maps.hpp); the box's bytes
// complete on the mbarrier as transactions. Coordinates are signed; the rest of the view is in the map.
inline constexpr const char* kCudaCopyTilePrelude = R"(#ifndef MTILE_CUDA_COPY_TILE
#define MTILE_CUDA_COPY_TILE
struct __align__(64) mt_tensor_map { unsigned long long word[16]; };
MT_FN void mt_copy_tile1(void* dst, const mt_tensor_map* map, int c0, void* bar) {
  asm volatile(
      "cp.async.bulk.tensor.1d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2}], [%3];" ::"r"(
          mt_shared_address(dst)),
      "l"(map), "r"(c0), "r"(mt_shared_address(bar))
      : "memory");
}
MT_FN void mt_copy_tile2(void* dst, const mt_tensor_map* map, int c0, int c1, void* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
      "[%4];" ::"r"(mt_shared_address(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(mt_shared_address(bar))
      : "memory");
}
MT_FN void mt_copy_tile3(void* dst, const mt_tensor_map* map, int c0, int c1, int c2, void* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];" ::"r"(mt_shared_address(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(mt_shared_address(bar))
      : "memory");
}
#endif  // MTILE_CUDA_COPY_TILE
)";

inline constexpr const char* kCudaLoadMatrixPrelude = R"(#ifndef MTILE_CUDA_LOAD_MATRIX
#define MTILE_CUDA_LOAD_MATRIX
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 750
#error "mtile: ldmatrix needs sm_75 or newer"
#endif
struct mt_matrix1 { unsigned int w[1]; };
struct mt_matrix2 { unsigned int w[2]; };
struct mt_matrix4 { unsigned int w[4]; };
#define MT_LOAD_MATRIX(N, TRANS, SUFFIX, REGS, ...)                                                  \
  MT_FN mt_matrix##N mt_load_matrix_x##N##SUFFIX(const void* p) {                                    \
    mt_matrix##N m;                                                                                  \
    unsigned int a = (unsigned int)__cvta_generic_to_shared(p);                                      \
    asm volatile("ldmatrix.sync.aligned.m8n8.x" #N TRANS ".shared.b16 " REGS ";" : __VA_ARGS__ : "r"(a)); \
    return m;                                                                                        \
  }
MT_LOAD_MATRIX(1, "", , "{%0}, [%1]", "=r"(m.w[0]))
MT_LOAD_MATRIX(2, "", , "{%0, %1}, [%2]", "=r"(m.w[0]), "=r"(m.w[1]))
MT_LOAD_MATRIX(4, "", , "{%0, %1, %2, %3}, [%4]", "=r"(m.w[0]), "=r"(m.w[1]), "=r"(m.w[2]), "=r"(m.w[3]))
MT_LOAD_MATRIX(1, ".trans", _trans, "{%0}, [%1]", "=r"(m.w[0]))
MT_LOAD_MATRIX(2, ".trans", _trans, "{%0, %1}, [%2]", "=r"(m.w[0]), "=r"(m.w[1]))
MT_LOAD_MATRIX(4, ".trans", _trans, "{%0, %1, %2, %3}, [%4]", "=r"(m.w[0]), "=r"(m.w[1]), "=r"(m.w[2]), "=r"(m.w[3]))
#undef MT_LOAD_MATRIX
#endif  // MTILE_CUDA_LOAD_MATRIX
)";

// Cache hints (ir::CacheHint, docs/IR.md): the access with an L2 eviction priority for every line
// it touches (a fractional policy of 1.0) and the same L1 priority, as Triton's eviction_policy.
// keep: evict_last, for data read again soon; stream: evict_first, for data touched once. Before
// sm_80, which has no cache policies, plain accesses. The "memory" clobber keeps each in its place
// among the kernel's other accesses. Included where a kernel's access carries a hint.
inline constexpr const char* kCudaCacheHintPrelude = R"(#ifndef MTILE_CUDA_CACHE_HINT
#define MTILE_CUDA_CACHE_HINT
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
template <class T> MT_FN T mt_load_keep(const T* p) { return *p; }
template <class T> MT_FN T mt_load_stream(const T* p) { return *p; }
template <class T> MT_FN void mt_store_keep(T* p, T v) { *p = v; }
template <class T> MT_FN void mt_store_stream(T* p, T v) { *p = v; }
#else
template <class T, class W>
MT_FN T mt_hint_cast(W w) {
  static_assert(sizeof(T) == sizeof(W), "a hinted access moves whole elements or vectors");
  union { W w; T t; } u;
  u.w = w;
  return u.t;
}
#define MT_POLICY(PRIORITY) "{.reg .b64 q; createpolicy.fractional.L2::" PRIORITY ".b64 q, 1.0;\n\t"
#define MT_HINTED_ACCESS(HINT, PRIORITY)                                                              \
  template <class T>                                                                                  \
  MT_FN T mt_load_##HINT(const T* p) {                                                                \
    if constexpr (sizeof(T) == 16) {                                                                  \
      uint4 w;                                                                                        \
      asm(MT_POLICY(PRIORITY) "ld.global.L1::" PRIORITY ".L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], q;}" \
          : "=r"(w.x), "=r"(w.y), "=r"(w.z), "=r"(w.w) : "l"(p) : "memory");                         \
      return mt_hint_cast<T>(w);                                                                      \
    } else if constexpr (sizeof(T) == 8) {                                                            \
      unsigned long long w;                                                                           \
      asm(MT_POLICY(PRIORITY) "ld.global.L1::" PRIORITY ".L2::cache_hint.u64 %0, [%1], q;}"          \
          : "=l"(w) : "l"(p) : "memory");                                                             \
      return mt_hint_cast<T>(w);                                                                      \
    } else if constexpr (sizeof(T) == 4) {                                                            \
      unsigned int w;                                                                                 \
      asm(MT_POLICY(PRIORITY) "ld.global.L1::" PRIORITY ".L2::cache_hint.u32 %0, [%1], q;}"          \
          : "=r"(w) : "l"(p) : "memory");                                                             \
      return mt_hint_cast<T>(w);                                                                      \
    } else if constexpr (sizeof(T) == 2) {                                                            \
      unsigned short w;                                                                               \
      asm(MT_POLICY(PRIORITY) "ld.global.L1::" PRIORITY ".L2::cache_hint.u16 %0, [%1], q;}"          \
          : "=h"(w) : "l"(p) : "memory");                                                             \
      return mt_hint_cast<T>(w);                                                                      \
    } else {                                                                                          \
      static_assert(sizeof(T) == 1, "a hinted access moves 1, 2, 4, 8 or 16 bytes");                  \
      unsigned short w;                                                                               \
      asm(MT_POLICY(PRIORITY) "ld.global.L1::" PRIORITY ".L2::cache_hint.u8 %0, [%1], q;}"           \
          : "=h"(w) : "l"(p) : "memory");                                                             \
      return mt_hint_cast<T>((unsigned char)w);                                                       \
    }                                                                                                 \
  }                                                                                                   \
  template <class T>                                                                                  \
  MT_FN void mt_store_##HINT(T* p, T v) {                                                             \
    if constexpr (sizeof(T) == 16) {                                                                  \
      uint4 w = mt_hint_cast<uint4>(v);                                                               \
      asm volatile(MT_POLICY(PRIORITY) "st.global.L1::" PRIORITY ".L2::cache_hint.v4.u32 [%0], {%1, %2, %3, %4}, q;}" \
                   ::"l"(p), "r"(w.x), "r"(w.y), "r"(w.z), "r"(w.w) : "memory");                     \
    } else if constexpr (sizeof(T) == 8) {                                                            \
      asm volatile(MT_POLICY(PRIORITY) "st.global.L1::" PRIORITY ".L2::cache_hint.u64 [%0], %1, q;}" \
                   ::"l"(p), "l"(mt_hint_cast<unsigned long long>(v)) : "memory");                    \
    } else if constexpr (sizeof(T) == 4) {                                                            \
      asm volatile(MT_POLICY(PRIORITY) "st.global.L1::" PRIORITY ".L2::cache_hint.u32 [%0], %1, q;}" \
                   ::"l"(p), "r"(mt_hint_cast<unsigned int>(v)) : "memory");                          \
    } else if constexpr (sizeof(T) == 2) {                                                            \
      asm volatile(MT_POLICY(PRIORITY) "st.global.L1::" PRIORITY ".L2::cache_hint.u16 [%0], %1, q;}" \
                   ::"l"(p), "h"(mt_hint_cast<unsigned short>(v)) : "memory");                        \
    } else {                                                                                          \
      static_assert(sizeof(T) == 1, "a hinted access moves 1, 2, 4, 8 or 16 bytes");                  \
      asm volatile(MT_POLICY(PRIORITY) "st.global.L1::" PRIORITY ".L2::cache_hint.u8 [%0], %1, q;}"  \
                   ::"l"(p), "h"((unsigned short)mt_hint_cast<unsigned char>(v)) : "memory");         \
    }                                                                                                 \
  }
MT_HINTED_ACCESS(keep, "evict_last")
MT_HINTED_ACCESS(stream, "evict_first")
#undef MT_HINTED_ACCESS
#undef MT_POLICY
#endif
#endif  // MTILE_CUDA_CACHE_HINT
)";

// copy_async (docs/IR.md): cp.async from global to shared memory, 4, 8 or 16 bytes (16 bypasses
// L1: .cg), in groups a thread commits and waits for. Before sm_80, which has no cp.async, a plain
// copy (complete when it is issued, which the IR allows). Included where a kernel uses copy_async.
inline constexpr const char* kCudaCopyAsyncPrelude = R"(#ifndef MTILE_CUDA_COPY_ASYNC
#define MTILE_CUDA_COPY_ASYNC
template <int Bytes>
MT_FN void mt_copy_async(void* dst, const void* src) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if __CUDA_ARCH__ >= 800
  unsigned int shared = (unsigned int)__cvta_generic_to_shared(dst);
  if (Bytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(shared), "l"(src) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(shared), "l"(src), "n"(Bytes) : "memory");
#else
  if (Bytes == 16) *(uint4*)dst = *(const uint4*)src;
  else if (Bytes == 8) *(uint2*)dst = *(const uint2*)src;
  else *(unsigned int*)dst = *(const unsigned int*)src;
#endif
}
MT_FN void mt_copy_async_commit() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
template <int Pending>
MT_FN void mt_copy_async_wait() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
#endif
}
#endif  // MTILE_CUDA_COPY_ASYNC
)";

}  // namespace mtile::codegen
