// Op tables and small helpers of the IR.
#include "mtile/ir.hpp"

#include <fmt/format.h>

#include <cmath>

namespace mtile::ir {

const char* op_name(Op op) {
  switch (op) {
    case Op::Const: return "const";
    case Op::ConstexprRef: return "constexpr";
    case Op::ProgramId: return "program_id";
    case Op::ThreadId: return "thread_id";
    case Op::ThreadgroupSize: return "threadgroup_size";
    case Op::GridSize: return "grid_size";
    case Op::SimdLane: return "simd_lane";
    case Op::SimdGroup: return "simd_group";
    case Op::Neg: return "neg";
    case Op::Not: return "not";
    case Op::Abs: return "abs";
    case Op::Floor: return "floor";
    case Op::Sqrt: return "sqrt";
    case Op::Rsqrt: return "rsqrt";
    case Op::Exp: return "exp";
    case Op::Exp2: return "exp2";
    case Op::Log: return "log";
    case Op::Tanh: return "tanh";
    case Op::Erf: return "erf";
    case Op::Sin: return "sin";
    case Op::Cos: return "cos";
    case Op::Cast: return "cast";
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::Rem: return "rem";
    case Op::Min: return "min";
    case Op::Max: return "max";
    case Op::BitAnd: return "and";
    case Op::BitOr: return "or";
    case Op::BitXor: return "xor";
    case Op::Shl: return "shl";
    case Op::Shr: return "shr";
    case Op::Lt: return "lt";
    case Op::Le: return "le";
    case Op::Gt: return "gt";
    case Op::Ge: return "ge";
    case Op::Eq: return "eq";
    case Op::Ne: return "ne";
    case Op::Select: return "select";
    case Op::Fma: return "fma";
    case Op::Load: return "load";
    case Op::Store: return "store";
    case Op::LoadVector: return "load_vector";
    case Op::Extract: return "extract";
    case Op::StoreVector: return "store_vector";
    case Op::LocalDecl: return "local";
    case Op::LocalGet: return "get";
    case Op::LocalSet: return "set";
    case Op::TgArrayDecl: return "threadgroup_array";
    case Op::Barrier: return "barrier";
    case Op::SimdSum: return "simd_sum";
    case Op::SimdMax: return "simd_max";
    case Op::SimdMin: return "simd_min";
    case Op::ShuffleXor: return "shuffle_xor";
    case Op::ShuffleDown: return "shuffle_down";
    case Op::TgReduceSum: return "threadgroup_reduce_sum";
    case Op::TgReduceMax: return "threadgroup_reduce_max";
    case Op::TgReduceMin: return "threadgroup_reduce_min";
    case Op::If: return "if";
    case Op::For: return "for";
    case Op::Call: return "call";
  }
  return "?";
}

bool is_unary(Op op) {
  return op >= Op::Neg && op <= Op::Cast;
}
bool is_binary(Op op) {
  return op >= Op::Add && op <= Op::Ne;
}
bool is_comparison(Op op) {
  return op >= Op::Lt && op <= Op::Ne;
}

bool is_pure(Op op) {
  if (op <= Op::Fma) return true;  // leaves, arithmetic, select, fma
  return op == Op::Load || op == Op::LoadVector || op == Op::Extract || op == Op::LocalGet;
}

const char* role_name(Role r) {
  switch (r) {
    case Role::In: return "in";
    case Role::Out: return "out";
    case Role::InOut: return "inout";
  }
  return "?";
}

const char* mode_name(Mode m) {
  return m == Mode::Elementwise ? "elementwise" : "reduction";
}

std::string SourceLoc::str() const {
  if (!file) return "";
  std::string_view f(file);
  auto slash = f.rfind('/');
  if (slash != std::string_view::npos) f.remove_prefix(slash + 1);
  return fmt::format("{}:{}", f, line);
}

int Function::param_index(const std::string& n) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == n) return static_cast<int>(i);
  return -1;
}

int Function::output_param() const {
  int found = -1;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].kind == ParamKind::Tensor && params[i].role != Role::In) {
      if (found >= 0) return -1;
      found = static_cast<int>(i);
    }
  }
  return found;
}

uint64_t const_bits(ScalarType t, double v) {
  switch (t) {
    case ScalarType::u32: return static_cast<uint32_t>(static_cast<int64_t>(v));
    case ScalarType::i32: return static_cast<uint32_t>(static_cast<int32_t>(v));
    case ScalarType::boolean: return v != 0.0 ? 1 : 0;
    default: return float_bits(round_to(t, static_cast<float>(v)));
  }
}

double const_value(ScalarType t, uint64_t bits) {
  switch (t) {
    case ScalarType::u32: return static_cast<double>(static_cast<uint32_t>(bits));
    case ScalarType::i32: return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(bits)));
    case ScalarType::boolean: return bits ? 1.0 : 0.0;
    default: return bits_float(static_cast<uint32_t>(bits));
  }
}

}  // namespace mtile::ir
