// Op tables and small helpers of the IR.
#include "mtile/ir.hpp"

#include <fmt/format.h>

#include <cmath>

namespace mtile::ir {

namespace {

struct OpInfo {
  const char* text;
  OpKind kind;
};
constexpr OpInfo kOps[] = {
#define MTILE_IR_OP_INFO(name, text, kind) {text, OpKind::kind},
    MTILE_FOR_EACH_IR_OP(MTILE_IR_OP_INFO)
#undef MTILE_IR_OP_INFO
};

const OpInfo& info(Op op) {
  return kOps[static_cast<size_t>(op)];
}

}  // namespace

const char* op_name(Op op) {
  return info(op).text;
}
OpKind op_kind(Op op) {
  return info(op).kind;
}
bool is_unary(Op op) {
  OpKind k = op_kind(op);
  return k == OpKind::Unary || k == OpKind::Math || k == OpKind::Test;
}
bool is_binary(Op op) {
  return op_kind(op) == OpKind::Binary || op_kind(op) == OpKind::Compare;
}
bool is_comparison(Op op) {
  return op_kind(op) == OpKind::Compare;
}
bool is_builtin(Op op) {
  return op_kind(op) == OpKind::Builtin;
}
bool is_float_math(Op op) {
  return op_kind(op) == OpKind::Math;
}
bool is_pure(Op op) {
  switch (op_kind(op)) {
    case OpKind::Leaf:
    case OpKind::Builtin:
    case OpKind::Unary:
    case OpKind::Math:
    case OpKind::Test:
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Ternary: return true;
    default: return op == Op::Load || op == Op::LoadVector || op == Op::Extract || op == Op::LocalGet;
  }
}

const char* cache_hint_name(CacheHint h) {
  switch (h) {
    case CacheHint::Normal: return "";
    case CacheHint::Keep: return "keep";
    case CacheHint::Stream: return "stream";
  }
  return "?";
}

const char* atomic_name(AtomicOp a) {
  switch (a) {
    case AtomicOp::Add: return "add";
    case AtomicOp::Min: return "min";
    case AtomicOp::Max: return "max";
    case AtomicOp::Exchange: return "exchange";
    case AtomicOp::CompareExchange: return "compare_exchange";
  }
  return "?";
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

bool may_share_memory(const Function& f, int a, int b) {
  if (a == b) return true;
  auto marked = [&](int p) { return p >= 0 && p < static_cast<int>(f.params.size()) && f.params[p].may_alias; };
  return marked(a) && marked(b);
}

uint64_t const_bits(ScalarType t, double v) {
  switch (t) {
    case ScalarType::u32: return static_cast<uint32_t>(static_cast<int64_t>(v));
    case ScalarType::i32: return static_cast<uint32_t>(static_cast<int32_t>(v));
    case ScalarType::u64: return v < 0 ? static_cast<uint64_t>(static_cast<int64_t>(v)) : static_cast<uint64_t>(v);
    case ScalarType::i64: return static_cast<uint64_t>(static_cast<int64_t>(v));
    case ScalarType::boolean: return v != 0.0 ? 1 : 0;
    default: return float_bits(round_to(t, static_cast<float>(v)));
  }
}

double const_value(ScalarType t, uint64_t bits) {
  switch (t) {
    case ScalarType::u32: return static_cast<double>(static_cast<uint32_t>(bits));
    case ScalarType::i32: return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(bits)));
    case ScalarType::u64: return static_cast<double>(bits);
    case ScalarType::i64: return static_cast<double>(static_cast<int64_t>(bits));
    case ScalarType::boolean: return bits ? 1.0 : 0.0;
    default: return bits_float(static_cast<uint32_t>(bits));
  }
}

}  // namespace mtile::ir
