#include "ir/eval.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mtile::ir {
namespace {

float rounded(ScalarType t, double v) {
  return round_to(t, static_cast<float>(v));
}

uint64_t float_to_u64(float f) {
  if (std::isnan(f) || f <= 0.0f) return 0;
  if (f >= 18446744073709551616.0f) return UINT64_MAX;
  return static_cast<uint64_t>(f);
}
int64_t float_to_i64(float f) {
  if (std::isnan(f)) return 0;
  if (f >= 9223372036854775808.0f) return std::numeric_limits<int64_t>::max();
  if (f < -9223372036854775808.0f) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(f);
}

uint32_t float_to_u32(float f) {
  if (std::isnan(f) || f <= 0.0f) return 0;
  if (f >= 4294967296.0f) return 0xffffffffu;
  return static_cast<uint32_t>(f);
}
int32_t float_to_i32(float f) {
  if (std::isnan(f)) return 0;
  if (f >= 2147483648.0f) return std::numeric_limits<int32_t>::max();
  if (f < -2147483648.0f) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(f);
}

// min and max order -0 below +0 (IEEE 754-2019 minimumNumber, maximumNumber), so that neither the
// operands' order nor the backend decides the sign of a zero result; a NaN operand gives the other.
float min_number(float a, float b) {
  if (a == b) return std::signbit(a) ? a : b;
  return std::fmin(a, b);
}
float max_number(float a, float b) {
  if (a == b) return std::signbit(a) ? b : a;
  return std::fmax(a, b);
}

}  // namespace

Scalar eval_unary(Op op, ScalarType from, ScalarType to, Scalar a) {
  Scalar r;
  r.u64 = 0;
  if (op == Op::Bitcast) return a;  // same width, same bits
  if (op == Op::IsNan || op == Op::IsInf) {
    r.u = op == Op::IsNan ? std::isnan(a.f) : std::isinf(a.f);
    return r;
  }
  if (op == Op::Cast) {
    if (is_float(from)) {
      if (is_float(to))
        r.f = round_to(to, a.f);
      else if (to == ScalarType::u32)
        r.u = float_to_u32(a.f);
      else if (to == ScalarType::i32)
        r.i = float_to_i32(a.f);
      else if (to == ScalarType::u64)
        r.u64 = float_to_u64(a.f);
      else if (to == ScalarType::i64)
        r.i64 = float_to_i64(a.f);
      else
        r.u = a.f != 0.0f;  // bool
      return r;
    }
    // From an integer or bool: its value, sign- or zero-extended.
    bool wide = is_64bit(from);
    int64_t sv = from == ScalarType::i32 ? a.i : from == ScalarType::i64 ? a.i64 : 0;
    uint64_t uv = wide ? a.u64 : a.u;
    bool is_signed = from == ScalarType::i32 || from == ScalarType::i64;
    if (is_float(to)) {
      float f = is_signed ? static_cast<float>(sv) : static_cast<float>(uv);  // one rounding to f32
      r.f = round_to(to, f);
    } else if (to == ScalarType::boolean) {
      r.u = uv != 0;
    } else if (is_64bit(to)) {
      r.u64 = is_signed ? static_cast<uint64_t>(sv) : uv;
    } else {
      r.u = static_cast<uint32_t>(is_signed ? static_cast<uint64_t>(sv) : uv);  // keeps the low bits
    }
    return r;
  }
  if (is_float(to)) {
    double x = a.f;
    double v = 0;
    switch (op) {
      case Op::Neg: v = -x; break;
      case Op::Abs: v = std::fabs(x); break;
      case Op::Floor: v = std::floor(x); break;
      case Op::Sqrt: v = std::sqrt(x); break;
      case Op::Rsqrt: v = 1.0 / std::sqrt(x); break;
      case Op::Exp: v = std::exp(x); break;
      case Op::Exp2: v = std::exp2(x); break;
      case Op::Log: v = std::log(x); break;
      case Op::Log1p: v = std::log1p(x); break;
      case Op::Expm1: v = std::expm1(x); break;
      case Op::Tanh: v = std::tanh(x); break;
      case Op::Erf: v = std::erf(x); break;
      case Op::Sin: v = std::sin(x); break;
      case Op::Cos: v = std::cos(x); break;
      case Op::Sigmoid: v = 1.0 / (1.0 + std::exp(-x)); break;
      case Op::Exp2Ftz:
        v = std::exp2(x);
        if (v < static_cast<double>(std::numeric_limits<float>::min())) v = 0.0;  // below f32's normals
        break;
      default: throw Error(std::string("CPU engine: unary op ") + op_name(op) + " on a float");
    }
    r.f = rounded(to, v);
    return r;
  }
  if (is_64bit(to)) {
    switch (op) {
      case Op::Neg: r.u64 = 0 - a.u64; break;
      case Op::Not: r.u64 = ~a.u64; break;
      case Op::Abs: r.i64 = a.i64 < 0 ? static_cast<int64_t>(0 - a.u64) : a.i64; break;
      default: throw Error(std::string("CPU engine: unary op ") + op_name(op) + " on an integer");
    }
    return r;
  }
  switch (op) {
    case Op::Neg: r.u = 0u - a.u; break;
    case Op::Not: r.u = to == ScalarType::boolean ? (a.u ^ 1u) : ~a.u; break;
    case Op::Abs: r.i = a.i < 0 ? static_cast<int32_t>(0u - a.u) : a.i; break;
    default: throw Error(std::string("CPU engine: unary op ") + op_name(op) + " on an integer");
  }
  return r;
}

namespace {

Scalar eval_binary64(Op op, ScalarType t, Scalar a, Scalar b) {
  Scalar r;
  r.u64 = 0;
  bool s = t == ScalarType::i64;
  switch (op) {
    case Op::Add: r.u64 = a.u64 + b.u64; break;
    case Op::Sub: r.u64 = a.u64 - b.u64; break;
    case Op::Mul: r.u64 = a.u64 * b.u64; break;
    case Op::Div:
    case Op::Rem:
      if (b.u64 == 0) throw Error(std::string("integer ") + op_name(op) + " by zero");
      if (s && a.i64 == std::numeric_limits<int64_t>::min() && b.i64 == -1)
        r.i64 = op == Op::Div ? a.i64 : 0;
      else if (s)
        r.i64 = op == Op::Div ? a.i64 / b.i64 : a.i64 % b.i64;
      else
        r.u64 = op == Op::Div ? a.u64 / b.u64 : a.u64 % b.u64;
      break;
    case Op::Min: r.u64 = s ? static_cast<uint64_t>(std::min(a.i64, b.i64)) : std::min(a.u64, b.u64); break;
    case Op::Max: r.u64 = s ? static_cast<uint64_t>(std::max(a.i64, b.i64)) : std::max(a.u64, b.u64); break;
    case Op::BitAnd: r.u64 = a.u64 & b.u64; break;
    case Op::BitOr: r.u64 = a.u64 | b.u64; break;
    case Op::BitXor: r.u64 = a.u64 ^ b.u64; break;
    case Op::Shl: r.u64 = a.u64 << (b.u64 & 63u); break;
    case Op::Shr: r.u64 = s ? static_cast<uint64_t>(a.i64 >> (b.u64 & 63u)) : a.u64 >> (b.u64 & 63u); break;
    case Op::Lt: r.u = s ? a.i64 < b.i64 : a.u64 < b.u64; break;
    case Op::Le: r.u = s ? a.i64 <= b.i64 : a.u64 <= b.u64; break;
    case Op::Gt: r.u = s ? a.i64 > b.i64 : a.u64 > b.u64; break;
    case Op::Ge: r.u = s ? a.i64 >= b.i64 : a.u64 >= b.u64; break;
    case Op::Eq: r.u = a.u64 == b.u64; break;
    case Op::Ne: r.u = a.u64 != b.u64; break;
    default: throw Error(std::string("CPU engine: binary op ") + op_name(op) + " on an integer");
  }
  return r;
}

}  // namespace

Scalar eval_binary(Op op, ScalarType t, Scalar a, Scalar b) {
  if (is_64bit(t)) return eval_binary64(op, t, a, b);
  Scalar r;
  r.u64 = 0;
  if (is_float(t)) {
    double x = a.f, y = b.f;
    switch (op) {
      case Op::Add: r.f = rounded(t, static_cast<float>(x + y)); return r;
      case Op::Sub: r.f = rounded(t, static_cast<float>(x - y)); return r;
      case Op::Mul: r.f = rounded(t, a.f * b.f); return r;
      case Op::Div: r.f = rounded(t, a.f / b.f); return r;
      case Op::Rem: r.f = rounded(t, std::fmod(a.f, b.f)); return r;
      case Op::Min: r.f = min_number(a.f, b.f); return r;
      case Op::Max: r.f = max_number(a.f, b.f); return r;
      case Op::Pow: r.f = rounded(t, std::pow(x, y)); return r;
      case Op::Lt: r.u = a.f < b.f; return r;
      case Op::Le: r.u = a.f <= b.f; return r;
      case Op::Gt: r.u = a.f > b.f; return r;
      case Op::Ge: r.u = a.f >= b.f; return r;
      case Op::Eq: r.u = a.f == b.f; return r;
      case Op::Ne: r.u = a.f != b.f; return r;
      default: throw Error(std::string("CPU engine: binary op ") + op_name(op) + " on a float");
    }
  }
  bool s = t == ScalarType::i32;
  switch (op) {
    case Op::Add: r.u = a.u + b.u; break;
    case Op::Sub: r.u = a.u - b.u; break;
    case Op::Mul: r.u = a.u * b.u; break;
    case Op::Div:
    case Op::Rem:
      if (b.u == 0) throw Error(std::string("integer ") + op_name(op) + " by zero");
      if (s && a.i == std::numeric_limits<int32_t>::min() && b.i == -1) {
        r.i = op == Op::Div ? a.i : 0;  // wraps, like the hardware
      } else if (s) {
        r.i = op == Op::Div ? a.i / b.i : a.i % b.i;
      } else {
        r.u = op == Op::Div ? a.u / b.u : a.u % b.u;
      }
      break;
    case Op::Min: r.u = s ? static_cast<uint32_t>(a.i < b.i ? a.i : b.i) : (a.u < b.u ? a.u : b.u); break;
    case Op::Max: r.u = s ? static_cast<uint32_t>(a.i > b.i ? a.i : b.i) : (a.u > b.u ? a.u : b.u); break;
    case Op::BitAnd: r.u = a.u & b.u; break;
    case Op::BitOr: r.u = a.u | b.u; break;
    case Op::BitXor: r.u = a.u ^ b.u; break;
    case Op::Shl: r.u = a.u << (b.u & 31u); break;
    case Op::Shr: r.u = s ? static_cast<uint32_t>(a.i >> (b.u & 31u)) : a.u >> (b.u & 31u); break;
    case Op::Lt: r.u = s ? a.i < b.i : a.u < b.u; break;
    case Op::Le: r.u = s ? a.i <= b.i : a.u <= b.u; break;
    case Op::Gt: r.u = s ? a.i > b.i : a.u > b.u; break;
    case Op::Ge: r.u = s ? a.i >= b.i : a.u >= b.u; break;
    case Op::Eq: r.u = a.u == b.u; break;
    case Op::Ne: r.u = a.u != b.u; break;
    default: throw Error(std::string("CPU engine: binary op ") + op_name(op) + " on an integer");
  }
  return r;
}

Scalar eval_fma(ScalarType t, Scalar a, Scalar b, Scalar c) {
  Scalar r;
  r.u64 = 0;
  r.f = round_to(t, std::fma(a.f, b.f, c.f));
  return r;
}

Scalar eval_reduce_step(Op op, ScalarType t, Scalar a, Scalar b) {
  switch (op) {
    case Op::SimdSum:
    case Op::TgReduceSum: return eval_binary(Op::Add, t, a, b);
    case Op::SimdMax:
    case Op::TgReduceMax: return eval_binary(Op::Max, t, a, b);
    default: return eval_binary(Op::Min, t, a, b);
  }
}

Scalar reduce_identity(Op op, ScalarType t) {
  Scalar r;
  r.u64 = 0;
  bool is_max = op == Op::SimdMax || op == Op::TgReduceMax;
  bool is_min = op == Op::SimdMin || op == Op::TgReduceMin;
  if (t == ScalarType::i64) {
    r.i64 = is_max ? std::numeric_limits<int64_t>::min() : is_min ? std::numeric_limits<int64_t>::max() : 0;
  } else if (t == ScalarType::u64) {
    r.u64 = is_min ? UINT64_MAX : 0;
  } else if (is_float(t)) {
    r.f = is_max ? -INFINITY : is_min ? INFINITY : 0.0f;
  } else if (t == ScalarType::i32) {
    r.i = is_max ? std::numeric_limits<int32_t>::min() : is_min ? std::numeric_limits<int32_t>::max() : 0;
  } else {
    r.u = is_min ? 0xffffffffu : 0u;
  }
  return r;
}

Scalar load_element(ScalarType t, const void* base, uint64_t i) {
  Scalar r;
  r.u64 = 0;
  switch (t) {
    case ScalarType::f16: r.f = f16_bits_to_f32(static_cast<const uint16_t*>(base)[i]); break;
    case ScalarType::bf16: r.f = bf16_bits_to_f32(static_cast<const uint16_t*>(base)[i]); break;
    case ScalarType::f8e4m3: r.f = f8e4m3_bits_to_f32(static_cast<const uint8_t*>(base)[i]); break;
    case ScalarType::f8e5m2: r.f = f8e5m2_bits_to_f32(static_cast<const uint8_t*>(base)[i]); break;
    case ScalarType::boolean: r.u = static_cast<const uint8_t*>(base)[i] != 0; break;
    case ScalarType::u8: r.u = static_cast<const uint8_t*>(base)[i]; break;
    case ScalarType::i8: r.i = static_cast<const int8_t*>(base)[i]; break;
    case ScalarType::u16: r.u = static_cast<const uint16_t*>(base)[i]; break;
    case ScalarType::i16: r.i = static_cast<const int16_t*>(base)[i]; break;
    case ScalarType::u64:
    case ScalarType::i64: r.u64 = static_cast<const uint64_t*>(base)[i]; break;
    default: r.u = static_cast<const uint32_t*>(base)[i]; break;
  }
  return r;
}

void store_element(ScalarType t, void* base, uint64_t i, Scalar v) {
  switch (t) {
    case ScalarType::f16: static_cast<uint16_t*>(base)[i] = f32_to_f16_bits(v.f); break;
    case ScalarType::bf16: static_cast<uint16_t*>(base)[i] = f32_to_bf16_bits(v.f); break;
    case ScalarType::f8e4m3: static_cast<uint8_t*>(base)[i] = f32_to_f8e4m3_bits(v.f); break;
    case ScalarType::f8e5m2: static_cast<uint8_t*>(base)[i] = f32_to_f8e5m2_bits(v.f); break;
    case ScalarType::boolean: static_cast<uint8_t*>(base)[i] = v.u != 0; break;
    case ScalarType::u8:
    case ScalarType::i8: static_cast<uint8_t*>(base)[i] = static_cast<uint8_t>(v.u); break;
    case ScalarType::u16:
    case ScalarType::i16: static_cast<uint16_t*>(base)[i] = static_cast<uint16_t>(v.u); break;
    case ScalarType::u64:
    case ScalarType::i64: static_cast<uint64_t*>(base)[i] = v.u64; break;
    default: static_cast<uint32_t*>(base)[i] = v.u; break;
  }
}

}  // namespace mtile::ir
