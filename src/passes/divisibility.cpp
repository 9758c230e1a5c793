// Divisibility of indices (see divisibility.hpp). Arithmetic wraps modulo 2^32 (2^64), which
// keeps divisibility by any power of two below it; zero-extending a u32 to u64 keeps its low bits.
#include "passes/divisibility.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "ir/slots.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {

using namespace ir;

bool is_index_type(ScalarType t) {
  return t == ScalarType::u32 || t == ScalarType::u64;
}

Divisibility::Divisibility(const Function& f, const std::map<std::string, uint32_t>& constexprs) : f_(f) {
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.result != kNoId) def_[in.result] = IndexDef{in.op, in.type, in.args, in.bits, in.param};
  });
  for (const auto& [name, value] : constexprs)
    if (int i = f.param_index(name); i >= 0) constexpr_values_[i] = value;
}

uint32_t Divisibility::factor(Id id) {
  if (auto it = memo_.find(id); it != memo_.end()) return it->second;
  uint32_t f = compute(id);
  memo_[id] = f;
  return f;
}

const IndexDef* Divisibility::def(Id id) const {
  auto it = def_.find(id);
  return it == def_.end() ? nullptr : &it->second;
}

const IndexDef* Divisibility::constant(Id id) const {
  const IndexDef* d = def(id);
  return d && d->op == Op::Const && is_index_type(d->type) ? d : nullptr;
}

static uint32_t of_constant(uint64_t c) {
  return c == 0 ? Divisibility::kMaxFactor
                : static_cast<uint32_t>(std::min<uint64_t>(Divisibility::kMaxFactor, c & (~c + 1)));
}

uint32_t Divisibility::compute(Id id) {
  const IndexDef* in = def(id);
  if (!in || !is_index_type(in->type)) return 1;
  switch (in->op) {
    case Op::Cast: {
      const IndexDef* src = def(in->args[0]);
      return src && src->type == ScalarType::u32 && in->type == ScalarType::u64 ? factor(in->args[0]) : 1;
    }
    case Op::Const: return of_constant(in->bits);
    case Op::ConstexprRef: {
      auto it = constexpr_values_.find(in->param);
      return it == constexpr_values_.end() ? 1 : of_constant(it->second);
    }
    case Op::Mul: return std::min(kMaxFactor, factor(in->args[0]) * factor(in->args[1]));
    case Op::Add:
    case Op::Sub: return std::min(factor(in->args[0]), factor(in->args[1]));
    case Op::Select: return std::min(factor(in->args[1]), factor(in->args[2]));
    // One of the operands: a bound clamped into range (min(i, k - 8)) keeps what both share.
    case Op::Min:
    case Op::Max: return std::min(factor(in->args[0]), factor(in->args[1]));
    // The induction value: start + j * step.
    case Op::For: return std::min(factor(in->args[0]), factor(in->args[2]));
    // Low bits that are zero in either operand are zero in the result (a mask like ~3u).
    case Op::BitAnd: return std::max(factor(in->args[0]), factor(in->args[1]));
    // Low bits that are zero in both are zero in the result (an XOR swizzle of 16-byte chunks).
    case Op::BitOr:
    case Op::BitXor: return std::min(factor(in->args[0]), factor(in->args[1]));
    case Op::Shl: {
      const IndexDef* s = constant(in->args[1]);
      if (!s) return 1;
      uint32_t shift = static_cast<uint32_t>(s->bits) & 31u;
      return shift >= 5 ? kMaxFactor : std::min(kMaxFactor, factor(in->args[0]) << shift);
    }
    default: return 1;  // builtins, loads, locals, scalars: nothing known
  }
}

std::string Divisibility::text(Id id) const {
  const IndexDef* d = def(id);
  if (!d) return fmt::format("%{}", id);
  auto operand = [&](Id a) {
    const IndexDef* o = def(a);
    std::string t = text(a);
    return o && (is_binary(o->op) || o->op == Op::Select) ? "(" + t + ")" : t;
  };
  switch (d->op) {
    case Op::Const: return fmt::format("{}", d->bits);
    case Op::ConstexprRef:
    case Op::ScalarRef: return f_.params.at(d->param).name;
    case Op::Cast: return text(d->args[0]);
    case Op::ProgramId:
    case Op::GridSize: return fmt::format("{}.{}", op_name(d->op), "xyz"[d->bits % 3]);
    case Op::For: return "a loop induction";
    case Op::LocalGet: return "a local";
    case Op::Load:
    case Op::Extract: return "a loaded value";
    case Op::Select: return fmt::format("select({}, {}, {})", text(d->args[0]), text(d->args[1]), text(d->args[2]));
    default: break;
  }
  static const std::map<Op, const char*> symbols = {
      {Op::Add, "+"},    {Op::Sub, "-"},   {Op::Mul, "*"},    {Op::Div, "/"},  {Op::Rem, "%"},
      {Op::BitAnd, "&"}, {Op::BitOr, "|"}, {Op::BitXor, "^"}, {Op::Shl, "<<"}, {Op::Shr, ">>"}};
  if (auto it = symbols.find(d->op); it != symbols.end() && d->args.size() == 2)
    return fmt::format("{} {} {}", operand(d->args[0]), it->second, operand(d->args[1]));
  if (d->args.empty()) return op_name(d->op);
  std::vector<std::string> args;
  for (Id a : d->args) args.push_back(text(a));
  return fmt::format("{}({})", op_name(d->op), fmt::join(args, ", "));
}

std::vector<std::string> misaligned_vector_accesses(const Function& traced,
                                                    const std::map<std::string, uint32_t>& constexprs) {
  bool any = false;
  for_each_inst(traced.body, [&](const Inst& in) {
    any |= in.op == Op::LoadVector || in.op == Op::StoreVector || in.op == Op::CopyAsync || in.op == Op::Call;
  });
  if (!any) return {};
  Function f = inline_calls(traced);
  Divisibility div(f, constexprs);
  std::vector<std::string> values;
  for (const Param& p : f.params)
    if (auto it = constexprs.find(p.name); it != constexprs.end() && p.kind == ParamKind::Constexpr)
      values.push_back(fmt::format("{} = {}", p.name, it->second));
  std::string known = values.empty() ? "" : fmt::format(" ({})", fmt::join(values, ", "));
  std::vector<std::string> out;
  // "<op> of N elements <where> at index ...": the access's first index must be a multiple of N.
  auto check = [&](const Inst& in, Id index, const char* op, const std::string& where) {
    if (in.lanes == 1 || div.factor(index) >= in.lanes) return;
    std::string loc = in.loc.str();
    out.push_back(
        fmt::format("{} of {} elements {} at index {}{}{} is not provably a multiple of {} (the "
                    "first index of an N-wide access must be)",
                    op, in.lanes, where, div.text(index), known, loc.empty() ? "" : " at " + loc, in.lanes));
  };
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.op == Op::LoadVector || in.op == Op::StoreVector)
      check(in, in.args[0], in.op == Op::LoadVector ? "load_n" : "store_n",
            fmt::format("of '{}'", f.params.at(in.param).name));
    if (in.op == Op::CopyAsync) {
      check(in, in.args[1], "copy_async", fmt::format("from '{}'", f.params.at(copy_source(in)).name));
      check(in, in.args[0], "copy_async", fmt::format("into threadgroup array %{}", in.param));
    }
  });
  return out;
}

}  // namespace mtile::passes
