#include "ir/eval.hpp"

#include <cmath>
#include <limits>

namespace mtile::ir {
namespace {

float rounded(ScalarType t, double v) {
  return round_to(t, static_cast<float>(v));
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
  r.u = 0;
  if (op == Op::Cast) {
    if (is_float(from)) {
      if (is_float(to))
        r.f = round_to(to, a.f);
      else if (to == ScalarType::u32)
        r.u = float_to_u32(a.f);
      else if (to == ScalarType::i32)
        r.i = float_to_i32(a.f);
      else
        r.u = a.f != 0.0f;  // bool
    } else {
      double v = from == ScalarType::i32 ? static_cast<double>(a.i) : static_cast<double>(a.u);
      if (is_float(to))
        r.f = rounded(to, v);
      else if (to == ScalarType::boolean)
        r.u = a.u != 0;
      else
        r.u = a.u;  // u32 <-> i32 keep the bits; bool -> int is 0/1
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
      case Op::Tanh: v = std::tanh(x); break;
      case Op::Erf: v = std::erf(x); break;
      case Op::Sin: v = std::sin(x); break;
      case Op::Cos: v = std::cos(x); break;
      default: throw Error(std::string("CPU engine: unary op ") + op_name(op) + " on a float");
    }
    r.f = rounded(to, v);
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

Scalar eval_binary(Op op, ScalarType t, Scalar a, Scalar b) {
  Scalar r;
  r.u = 0;
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
  r.u = 0;
  bool is_max = op == Op::SimdMax || op == Op::TgReduceMax;
  bool is_min = op == Op::SimdMin || op == Op::TgReduceMin;
  if (is_float(t)) {
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
  r.u = 0;
  switch (t) {
    case ScalarType::f16: r.f = f16_bits_to_f32(static_cast<const uint16_t*>(base)[i]); break;
    case ScalarType::bf16: r.f = bf16_bits_to_f32(static_cast<const uint16_t*>(base)[i]); break;
    case ScalarType::boolean: r.u = static_cast<const uint8_t*>(base)[i] != 0; break;
    default: r.u = static_cast<const uint32_t*>(base)[i]; break;
  }
  return r;
}

void store_element(ScalarType t, void* base, uint64_t i, Scalar v) {
  switch (t) {
    case ScalarType::f16: static_cast<uint16_t*>(base)[i] = f32_to_f16_bits(v.f); break;
    case ScalarType::bf16: static_cast<uint16_t*>(base)[i] = f32_to_bf16_bits(v.f); break;
    case ScalarType::boolean: static_cast<uint8_t*>(base)[i] = v.u != 0; break;
    default: static_cast<uint32_t*>(base)[i] = v.u; break;
  }
}

}  // namespace mtile::ir
