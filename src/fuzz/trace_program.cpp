// trace_program: a program description to IR, through the DSL (so the DSL's checks apply).
//
// Operands are looked up by value number in the scopes open at the statement; one that is gone
// (the shrinker removed its statement, or hoisted the statement out of its scope) becomes the
// constant 1 of its type. Indices never depend on a removed statement for being in bounds.
#include <fmt/format.h>

#include <bit>
#include <memory>
#include <unordered_map>

#include "fuzz/program.hpp"
#include "mtile/dsl.hpp"

namespace mtile::fuzz {
namespace {

using namespace dsl;
using K = Stmt::Kind;

class Tracer {
 public:
  Tracer(const Program& p, detail::TraceScope& scope) : p_(p) {
    for (size_t i = 0; i < p.param_count(); ++i) {
      const int param = static_cast<int>(i);
      if (const TensorDesc* t = p.tensor(param); t)
        tensors_.push_back(scope.tensor_arg(param));
      else if (param < p.scalar_param(0))
        constexprs_.push_back(scope.constexpr_arg(param));
      else
        scalars_.push_back(scope.scalar_arg(param));
    }
    while (tensors_.size() < p.param_count()) tensors_.push_back({});  // indexed by parameter
  }

  void run() {
    scopes_.emplace_back();
    Val flat = program_id(0);
    if (p_.geometry.grid[2] > 1)
      flat = (program_id(2) * grid_size(1) + program_id(1)) * grid_size(0) + flat;
    else if (p_.geometry.grid[1] > 1)
      flat = program_id(1) * grid_size(0) + flat;
    tid_ = tid();
    gid_ = flat * lsize() + tid_;
    // One base per tensor, shared by its accesses: vectorize_memory groups accesses by base id.
    for (size_t i = 0; i < p_.inputs.size(); ++i) in_base_.push_back(gid_ * p_.inputs[i].stride);
    if (p_.has_inout) io_base_ = gid_ * p_.inout.stride;
    for (const TensorDesc& o : p_.outputs) out_base_.push_back(gid_ * o.stride);
    stmts(p_.body);
  }

 private:
  struct Scope {
    std::vector<int> values, locals;
  };

  void stmts(const std::vector<Stmt>& b) {
    for (const Stmt& s : b) stmt(s);
  }

  void nested(const std::vector<Stmt>& b, int induction = -1, Val iv = {}) {
    scopes_.emplace_back();
    if (induction >= 0) define(induction, iv);
    stmts(b);
    for (int v : scopes_.back().values) values_.erase(v);
    for (int l : scopes_.back().locals) locals_.erase(l);
    scopes_.pop_back();
  }

  void define(int value, const Val& v) {
    if (value < 0) return;
    values_[value] = v;
    scopes_.back().values.push_back(value);
  }

  Val one(ScalarType t) { return t == ScalarType::boolean ? lit(true) : lit(t, 1); }

  Val arg(const Stmt& s, size_t k, ScalarType t) {
    if (k < s.args.size())
      if (auto it = values_.find(s.args[k]); it != values_.end() && it->second.type == t) return it->second;
    return one(t);
  }

  static Val at(const Val& base, uint64_t k) { return k ? base + lit(static_cast<uint32_t>(k)) : base; }

  Val load_index(const Stmt& s) {
    const TensorDesc& t = p_.inputs.at(s.slot);
    const uint32_t count = static_cast<uint32_t>(p_.count(t));
    switch (s.mode) {
      case Stmt::IndexMode::Own: return at(in_base_[s.slot], s.imm % t.stride);
      case Stmt::IndexMode::Computed: {
        Val n = lit(count);
        for (size_t c = 0; c < p_.constexprs.size(); ++c)
          if (s.imm == 1 && p_.constexprs[c].length_of == s.slot) n = constexprs_[c];
        return arg(s, 0, ScalarType::u32) % n;
      }
      case Stmt::IndexMode::Based: {
        auto it = bases_.find(s.args.empty() ? -1 : s.args[0]);
        bool fits = it != bases_.end() && it->second == std::pair<int, uint32_t>{s.slot, s.lanes} &&
                    values_.count(s.args[0]) && s.imm < s.lanes;
        return fits ? at(values_.at(s.args[0]), s.imm) : lit(static_cast<uint32_t>(s.imm % count));
      }
    }
    return lit(0u);
  }

  Val unary(const Stmt& s) {
    using ir::Op;
    if (s.op == Op::Cast) return arg(s, 0, s.from).cast(s.type);
    if (s.op == Op::Bitcast) return bitcast(arg(s, 0, s.from), s.type);
    if (s.op == Op::IsNan) return isnan(arg(s, 0, s.from));
    if (s.op == Op::IsInf) return isinf(arg(s, 0, s.from));
    Val a = arg(s, 0, s.type);
    switch (s.op) {
      case Op::Neg: return -a;
      case Op::Not: return !a;
      case Op::Abs: return abs(a);
      case Op::Floor: return floor(a);
      case Op::Sqrt: return sqrt(a);
      case Op::Rsqrt: return rsqrt(a);
      case Op::Exp: return exp(a);
      case Op::Exp2: return exp2(a);
      case Op::Log: return log(a);
      case Op::Tanh: return tanh(a);
      case Op::Erf: return erf(a);
      case Op::Sin: return sin(a);
      case Op::Cos: return cos(a);
      case Op::Log1p: return log1p(a);
      case Op::Expm1: return expm1(a);
      case Op::Exp2Ftz: return exp2_ftz(a);
      case Op::Sigmoid: return sigmoid(a);
      default: throw Error(fmt::format("fuzz: unary {} is not generated", ir::op_name(s.op)));
    }
  }

  Val binary(const Stmt& s) {
    const ScalarType t = s.from;
    Val a = arg(s, 0, t), b = arg(s, 1, t);
    if ((s.op == ir::Op::Div || s.op == ir::Op::Rem) && is_integer(t))
      b = select(b == lit(t, 0), lit(t, 1), b);  // division by zero is an error on the engine
    return detail::binary(s.op, a, b);
  }

  Val simd(const Stmt& s) {
    Val v = arg(s, 0, s.type);
    switch (s.op) {
      case ir::Op::SimdSum: return simd_sum(v);
      case ir::Op::SimdMax: return simd_max(v);
      case ir::Op::SimdMin: return simd_min(v);
      case ir::Op::ShuffleXor: return simd_shuffle_xor(v, arg(s, 1, ScalarType::u32));
      default: return simd_shuffle_down(v, arg(s, 1, ScalarType::u32));
    }
  }

  // The slot of a threadgroup array of tpg elements a thread reads back, by the pattern in `imm`.
  Val exchange_index(uint64_t imm) {
    const uint32_t tpg = p_.geometry.tpg;
    const uint32_t c = static_cast<uint32_t>(imm >> 2);
    Val index;
    switch (imm & 3) {
      case 1:
        if (tpg % 32 == 0) {  // stays inside the thread's simdgroup
          index = tid_ ^ lit(c % 32);
          break;
        }
        [[fallthrough]];
      case 0: index = (tid_ + lit(c)) % lsize(); break;
      case 2: index = lsize() - lit(1u) - tid_; break;
      default: index = (tid_ + lit(c)) % lit(tpg); break;
    }
    return index;
  }

  Val exchange(const Stmt& s) {
    TgArray a = threadgroup_array(s.type, p_.geometry.tpg);
    store(a[tid_], arg(s, 0, value_type(s.type)));
    barrier();
    Val got = load(a[exchange_index(s.imm)]);
    barrier();  // the next write of the array (a loop's next iteration) waits for every read
    return got;
  }

  Val atomic(const Stmt& s, const MemRef& at, size_t first) {
    Val v = arg(s, first, at.elem);
    switch (s.atomic) {
      case ir::AtomicOp::Add: return atomic_add(at, v);
      case ir::AtomicOp::Min: return atomic_min(at, v);
      case ir::AtomicOp::Max: return atomic_max(at, v);
      case ir::AtomicOp::Exchange: return atomic_exchange(at, v);
      case ir::AtomicOp::CompareExchange: return atomic_compare_exchange(at, arg(s, first + 1, at.elem), v);
    }
    return v;
  }

  Val tg_atomic(const Stmt& s) {
    TgArray a = threadgroup_array(s.type, p_.geometry.tpg);
    store(a[tid_], arg(s, 0, s.type));
    barrier();
    Val old = atomic(s, a[arg(s, 1, ScalarType::u32) % lsize()], 2);
    barrier();
    if (s.old_value) return old;
    Val got = load(a[exchange_index(s.imm)]);
    barrier();
    return got;
  }

  // A load at any index, masked to where `mask` holds and the index is in bounds.
  Val masked_load(const Stmt& s) {
    const TensorDesc& t = p_.inputs.at(s.slot);
    Val index = arg(s, 0, ScalarType::u32);
    Val mask = arg(s, 1, ScalarType::boolean) && index < lit(static_cast<uint32_t>(p_.count(t)));
    return load(tensors_.at(s.slot)[index], mask, arg(s, 2, value_type(t.elem)));
  }

  // The output a Store or MaskedStore writes, when it still fits the statement (the shrinker may
  // have changed what its operands are).
  const TensorDesc* store_target(const Stmt& s) const {
    if (s.tensor < 0 || s.tensor >= static_cast<int>(p_.outputs.size())) return nullptr;
    const TensorDesc& o = p_.outputs[s.tensor];
    return s.slot < static_cast<int>(o.stride) && value_type(o.elem) == s.type ? &o : nullptr;
  }

  void stmt(const Stmt& s) {
    using ir::Op;
    switch (s.kind) {
      case K::Const: define(s.value, detail::emit(Op::Const, s.type, {}, s.imm)); return;
      case K::Builtin: define(s.value, detail::emit(s.op, ScalarType::u32, {}, s.imm)); return;
      case K::ConstexprRef: define(s.value, constexprs_.at(s.slot)); return;
      case K::ScalarRef: define(s.value, scalars_.at(s.slot)); return;
      case K::Unary: define(s.value, unary(s)); return;
      case K::Binary: define(s.value, binary(s)); return;
      case K::Select:
        define(s.value, select(arg(s, 0, ScalarType::boolean), arg(s, 1, s.type), arg(s, 2, s.type)));
        return;
      case K::Fma: define(s.value, fma(arg(s, 0, s.type), arg(s, 1, s.type), arg(s, 2, s.type))); return;
      case K::Load: define(s.value, load(tensors_.at(s.slot)[load_index(s)])); return;
      case K::MaskedLoad: define(s.value, masked_load(s)); return;
      case K::MaskedStore:
        if (store_target(s))
          store(tensors_.at(p_.output_param(s.tensor))[at(out_base_[s.tensor], s.slot)], arg(s, 0, s.type),
                arg(s, 1, ScalarType::boolean));
        return;
      case K::DeviceAtomic: {
        Val index = arg(s, 0, ScalarType::u32) % lit(static_cast<uint32_t>(p_.acc.count));
        define(s.value, atomic(s, tensors_.at(p_.acc_param())[index], 1));
        return;
      }
      case K::TgAtomic: define(s.value, tg_atomic(s)); return;
      case K::AlignedBase: {
        const uint32_t groups = static_cast<uint32_t>(p_.count(p_.inputs.at(s.slot)) / s.imm);
        define(s.value, (arg(s, 0, ScalarType::u32) % lit(groups)) * lit(static_cast<uint32_t>(s.imm)));
        bases_[s.value] = {s.slot, static_cast<uint32_t>(s.imm)};
        return;
      }
      case K::WindowBase: {
        const uint32_t room = static_cast<uint32_t>(p_.count(p_.inputs.at(s.slot)) - s.imm + 1);
        define(s.value, arg(s, 0, ScalarType::u32) & lit(std::bit_floor(room) - 1));
        bases_[s.value] = {s.slot, static_cast<uint32_t>(s.imm)};
        return;
      }
      case K::Simd: define(s.value, simd(s)); return;
      case K::Reduce: {
        Val v = arg(s, 0, s.type);
        define(s.value, s.op == Op::TgReduceSum   ? reduce_sum(v)
                        : s.op == Op::TgReduceMax ? reduce_max(v)
                                                  : reduce_min(v));
        return;
      }
      case K::Exchange: define(s.value, exchange(s)); return;
      case K::VarDecl:
        locals_[s.slot] = {std::make_unique<Var>(arg(s, 0, s.type)), s.type};
        scopes_.back().locals.push_back(s.slot);
        return;
      case K::VarSet:
        if (auto it = locals_.find(s.slot); it != locals_.end() && it->second.type == s.type)
          *it->second.var = arg(s, 0, s.type);
        return;
      case K::VarGet:
        if (auto it = locals_.find(s.slot); it != locals_.end() && it->second.type == s.type)
          define(s.value, it->second.var->get());
        else
          define(s.value, one(s.type));
        return;
      case K::If:
        if (s.orelse.empty())
          if_(arg(s, 0, ScalarType::boolean), [&] { nested(s.body); });
        else
          if_(
              arg(s, 0, ScalarType::boolean), [&] { nested(s.body); }, [&] { nested(s.orelse); });
        return;
      case K::For: {
        Val end = min(arg(s, 0, ScalarType::u32), lit(static_cast<uint32_t>(s.imm >> 8)));
        Val step = s.step ? lit(s.step) : arg(s, 1, ScalarType::u32) % lit(3u) + lit(1u);
        for_(lit(static_cast<uint32_t>(s.imm & 0xff)), end, step, [&](Val i) {
          ++loops_;
          nested(s.body, s.value, i);
          --loops_;
        });
        return;
      }
      case K::While: {
        Var trips(lit(0u));
        Val bound = min(arg(s, 0, ScalarType::u32), lit(static_cast<uint32_t>(s.imm)));
        while_([&] { return trips.get() < bound; },
               [&] {
                 trips = trips.get() + lit(1u);  // first: a continue_ must not skip it
                 ++loops_;
                 nested(s.body);
                 --loops_;
               });
        return;
      }
      case K::Break:
        if (loops_ > 0) break_();
        return;
      case K::Continue:
        if (loops_ > 0) continue_();
        return;
      case K::Return: return_(); return;
      case K::Store:
        if (store_target(s))
          store(tensors_.at(p_.output_param(s.tensor))[at(out_base_[s.tensor], s.slot)], arg(s, 0, s.type));
        return;
      case K::InOutLoad:
        define(s.value, load(tensors_.at(p_.inout_param())[at(io_base_, s.slot % p_.inout.stride)]));
        return;
      case K::InOutStore:
        store(tensors_.at(p_.inout_param())[at(io_base_, s.slot % p_.inout.stride)],
              arg(s, 0, value_type(p_.inout.elem)));
        return;
    }
  }

  const Program& p_;
  std::vector<Tensor> tensors_;
  std::vector<Constexpr> constexprs_;
  std::vector<Val> scalars_;
  int loops_ = 0;  // for_ and while_ bodies open: where a break_ or continue_ may go
  Val tid_, gid_, io_base_;
  std::vector<Val> in_base_, out_base_;
  std::vector<Scope> scopes_;
  std::unordered_map<int, Val> values_;
  struct Local {
    std::unique_ptr<Var> var;
    ScalarType type;
  };
  std::unordered_map<int, Local> locals_;
  std::unordered_map<int, std::pair<int, uint32_t>> bases_;  // AlignedBase value -> (input, width)
};

}  // namespace

size_t count_stmts(const std::vector<Stmt>& b) {
  size_t n = 0;
  for (const Stmt& s : b) n += 1 + count_stmts(s.body) + count_stmts(s.orelse);
  return n;
}

uint64_t Program::value_bits(int p) const {
  if (p >= scalar_param(0) && p < static_cast<int>(param_count())) return scalars.at(p - scalar_param(0)).bits;
  if (p >= constexpr_param(0) && p < scalar_param(0)) return constexpr_value(p - constexpr_param(0));
  return 0;
}

uint32_t Program::constexpr_value(size_t c) const {
  const ConstexprDesc& d = constexprs.at(c);
  return d.length_of >= 0 ? static_cast<uint32_t>(count(inputs.at(d.length_of))) : d.value;
}

const TensorDesc* Program::tensor(int p) const {
  size_t i = static_cast<size_t>(p);
  if (i < inputs.size()) return &inputs[i];
  i -= inputs.size();
  if (has_inout && i-- == 0) return &inout;
  if (has_acc && i-- == 0) return &acc;
  if (i < outputs.size()) return &outputs[i];
  return nullptr;
}

ir::Function trace_program(const Program& p) {
  std::vector<std::string> names;
  std::vector<detail::ParamDesc> descs;
  for (const TensorDesc& t : p.inputs) {
    names.push_back(t.name);
    descs.push_back({ir::ParamKind::Tensor, t.elem, ir::Role::In});
  }
  if (p.has_inout) {
    names.push_back(p.inout.name);
    descs.push_back({ir::ParamKind::Tensor, p.inout.elem, ir::Role::InOut});
  }
  if (p.has_acc) {
    names.push_back(p.acc.name);
    descs.push_back({ir::ParamKind::Tensor, p.acc.elem, ir::Role::InOut});
  }
  for (const TensorDesc& t : p.outputs) {
    names.push_back(t.name);
    descs.push_back({ir::ParamKind::Tensor, t.elem, ir::Role::Out});
  }
  for (const ConstexprDesc& c : p.constexprs) {
    names.push_back(c.name);
    descs.push_back({ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In});
  }
  for (const ScalarDesc& c : p.scalars) {
    names.push_back(c.name);
    descs.push_back({ir::ParamKind::Scalar, c.type, ir::Role::In});
  }
  detail::TraceScope scope("fuzz", ir::Mode::Reduction, ScalarType::f32, {}, names, descs);
  Tracer(p, scope).run();
  return scope.finish();
}

}  // namespace mtile::fuzz
