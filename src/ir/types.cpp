#include "mtile/types.hpp"

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
  }
  return "?";
}

std::optional<ScalarType> parse_type(std::string_view s) {
  for (auto t :
       {ScalarType::u32, ScalarType::i32, ScalarType::f32, ScalarType::f16, ScalarType::bf16, ScalarType::boolean})
    if (s == type_name(t)) return t;
  return std::nullopt;
}

size_t storage_bytes(ScalarType t) {
  switch (t) {
    case ScalarType::f16:
    case ScalarType::bf16: return 2;
    case ScalarType::boolean: return 1;
    default: return 4;
  }
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
    default: return f;
  }
}

}  // namespace mtile
