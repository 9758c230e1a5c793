#include "mtile/types.hpp"

#include <algorithm>
#include <cmath>

namespace mtile {

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::User: return "user";
    case ErrorKind::Internal: return "internal";
    case ErrorKind::Device: return "device";
  }
  return "?";
}

const char* type_name(ScalarType t) {
  switch (t) {
    case ScalarType::u32: return "u32";
    case ScalarType::i32: return "i32";
    case ScalarType::f32: return "f32";
    case ScalarType::f16: return "f16";
    case ScalarType::bf16: return "bf16";
    case ScalarType::boolean: return "bool";
    case ScalarType::u64: return "u64";
    case ScalarType::i64: return "i64";
    case ScalarType::u8: return "u8";
    case ScalarType::i8: return "i8";
    case ScalarType::u16: return "u16";
    case ScalarType::i16: return "i16";
    case ScalarType::f8e4m3: return "f8e4m3";
    case ScalarType::f8e5m2: return "f8e5m2";
  }
  return "?";
}

std::optional<ScalarType> parse_type(std::string_view s) {
  for (size_t i = 0; i < kScalarTypeCount; ++i) {
    auto t = static_cast<ScalarType>(i);
    if (s == type_name(t)) return t;
  }
  return std::nullopt;
}

size_t storage_bytes(ScalarType t) {
  switch (t) {
    case ScalarType::f16:
    case ScalarType::bf16:
    case ScalarType::u16:
    case ScalarType::i16: return 2;
    case ScalarType::boolean:
    case ScalarType::u8:
    case ScalarType::i8:
    case ScalarType::f8e4m3:
    case ScalarType::f8e5m2: return 1;
    case ScalarType::u64:
    case ScalarType::i64: return 8;
    default: return 4;
  }
}

namespace {

// An fp8 format: exponent and mantissa bits, bias, whether the top exponent holds infinities.
struct Fp8 {
  int mbits, bias;
  bool ieee;    // e5m2: top exponent is inf/NaN; e4m3fn: only S.1111.111 is NaN
  double max;   // largest finite value
  uint8_t nan;  // the NaN it writes (sign added)
};
constexpr Fp8 kE4m3{3, 7, false, 448.0, 0x7f};
constexpr Fp8 kE5m2{2, 15, true, 57344.0, 0x7e};

uint8_t to_fp8(const Fp8& fmt, float f) {
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | fmt.nan;
  double a = std::fabs(static_cast<double>(f));
  if (a == 0) return sign;
  int min_exp = 1 - fmt.bias;  // exponent of the smallest normal
  int e = std::max(static_cast<int>(std::floor(std::log2(a))), min_exp);
  double quantum = std::ldexp(1.0, e - fmt.mbits);
  double r = std::nearbyint(a / quantum) * quantum;  // round to nearest even (default rounding mode)
  if (r > fmt.max) r = fmt.max;                      // saturate, infinities included
  if (r == 0) return sign;
  int e2 = std::max(static_cast<int>(std::floor(std::log2(r))), min_exp);
  uint32_t mant, exp;
  if (r < std::ldexp(1.0, min_exp)) {  // subnormal
    exp = 0;
    mant = static_cast<uint32_t>(r / std::ldexp(1.0, min_exp - fmt.mbits));
  } else {
    exp = static_cast<uint32_t>(e2 + fmt.bias);
    mant = static_cast<uint32_t>(r / std::ldexp(1.0, e2 - fmt.mbits)) - (1u << fmt.mbits);
  }
  return sign | static_cast<uint8_t>(exp << fmt.mbits | mant);
}

float from_fp8(const Fp8& fmt, uint8_t b) {
  bool neg = b & 0x80;
  uint32_t exp = (b & 0x7f) >> fmt.mbits, mant = b & ((1u << fmt.mbits) - 1);
  uint32_t top = (1u << (7 - fmt.mbits)) - 1;
  double v;
  if (fmt.ieee && exp == top)
    v = mant ? NAN : INFINITY;
  else if (!fmt.ieee && exp == top && mant == (1u << fmt.mbits) - 1)
    v = NAN;
  else if (exp == 0)
    v = std::ldexp(static_cast<double>(mant), 1 - fmt.bias - fmt.mbits);
  else
    v = std::ldexp(1.0 + mant / static_cast<double>(1u << fmt.mbits), static_cast<int>(exp) - fmt.bias);
  return static_cast<float>(neg ? -v : v);
}

}  // namespace

uint8_t f32_to_f8e4m3_bits(float f) {
  return to_fp8(kE4m3, f);
}
float f8e4m3_bits_to_f32(uint8_t b) {
  return from_fp8(kE4m3, b);
}
uint8_t f32_to_f8e5m2_bits(float f) {
  return to_fp8(kE5m2, f);
}
float f8e5m2_bits_to_f32(uint8_t b) {
  return from_fp8(kE5m2, b);
}

uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float bf16_bits_to_f32(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

uint16_t f32_to_f16_bits(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to inf (>= 65520)
  if (abs < 0x38800000u) {                        // f16 subnormal or zero
    // Scale into the subnormal grid (2^-24 units) and round half to even.
    float a = bits_float(abs);
    float scaled = a * 16777216.0f;    // exact: power of two
    float r = std::nearbyint(scaled);  // default rounding mode: nearest even
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t mant = abs & 0x7fffffu;
  uint32_t exp = (abs >> 23) - 127 + 15;
  uint32_t half = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // carry may bump exponent: correct
  return sign | static_cast<uint16_t>(half);
}

float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

float round_to(ScalarType t, float f) {
  switch (t) {
    case ScalarType::f16: return f16_bits_to_f32(f32_to_f16_bits(f));
    case ScalarType::bf16: return bf16_bits_to_f32(f32_to_bf16_bits(f));
    case ScalarType::f8e4m3: return f8e4m3_bits_to_f32(f32_to_f8e4m3_bits(f));
    case ScalarType::f8e5m2: return f8e5m2_bits_to_f32(f32_to_f8e5m2_bits(f));
    default: return f;
  }
}

}  // namespace mtile
