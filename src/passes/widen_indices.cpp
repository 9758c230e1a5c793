// widen_indices: gives the accesses of tensors that may hold more than 2^31 elements 64-bit
// offsets. A launch decides which tensors (their element counts from the shape), so small tensors
// keep 32-bit index math. The u32 index expression of each such access is computed again in u64,
// just before the access: additions, products, shifts, selects, divisions and bitwise ops are
// redone in 64 bits (where they would have wrapped, they now do not); builtins, constexprs,
// scalars, loop inductions, loaded values and constants become u64 as they are (they are below
// 2^32 anyway). A u32 local variable in an index chain is refused: it may hold an offset that
// already wrapped, and the pass cannot see how it was computed. So is a loop induction whose
// bounds may have wrapped: their largest value, bounded from the builtins' limits (a threadgroup
// has at most 1024 threads, a grid at most 2^31 - 1 threadgroups an axis) and exact where they
// come from constants, reaches 2^32. Launches with wide tensors bake their constexprs for that.
// eliminate_common_subexpressions merges the repeated expressions and eliminate_dead_code removes the u32 ones left
// unused.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "ir/slots.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

// What the pass needs of a value's definition (copied: the pass moves instructions around).
struct Def {
  Op op;
  ScalarType type;
  std::vector<Id> args;
  uint64_t bits;
};

class Widener {
 public:
  Widener(Function& f, const std::set<std::string>& wide) : f_(f) {
    for (size_t i = 0; i < f.params.size(); ++i)
      if (f.params[i].kind == ParamKind::Tensor && wide.count(f.params[i].name)) wide_.insert(static_cast<int>(i));
    for_each_inst(f.body, [&](const Inst& in) {
      if (in.result != kNoId)
        def_[in.result] = Def{in.op, in.op == Op::For ? ScalarType::u32 : in.type, in.args, in.bits};
    });
  }

  void block(Block& b) {
    std::vector<Inst> out;
    out.reserve(b.insts.size());
    for (Inst& in : b.insts) {
      for (Block& sub : in.blocks) block(sub);
      bool access = in.op == Op::Load || in.op == Op::Store || in.op == Op::LoadVector || in.op == Op::StoreVector ||
                    in.op == Op::Atomic;
      if (access && in.space == MemSpace::Device && wide_.count(in.param) && type_of(in.args[0]) == ScalarType::u32) {
        std::unordered_map<Id, Id> memo;  // per access: the chain is rebuilt where the access is
        in.args[0] = widen(in.args[0], in, out, memo);
      }
      // An async copy's source index (args[1]) indexes tensor `bits`.
      if (in.op == Op::CopyAsync && wide_.count(copy_source(in)) && type_of(in.args[1]) == ScalarType::u32) {
        std::unordered_map<Id, Id> memo;
        in.args[1] = widen(in.args[1], in, out, memo);
      }
      out.push_back(std::move(in));
    }
    b.insts = std::move(out);
  }

 private:
  ScalarType type_of(Id id) const {
    auto it = def_.find(id);
    return it == def_.end() ? ScalarType::u32 : it->second.type;
  }

  Id emit(std::vector<Inst>& out, Op op, std::vector<Id> args, uint64_t bits, const Inst& at) {
    Inst in;
    in.op = op;
    in.type = ScalarType::u64;
    in.args = std::move(args);
    in.bits = bits;
    in.result = f_.fresh_id();
    in.loc = at.loc;
    out.push_back(std::move(in));
    return out.back().result;
  }

  // The u64 value of the u32 value `id`, computed without wrapping, emitted into `out`.
  Id widen(Id id, const Inst& access, std::vector<Inst>& out, std::unordered_map<Id, Id>& memo) {
    if (auto it = memo.find(id); it != memo.end()) return it->second;
    auto found = def_.find(id);
    const Def* d = found == def_.end() ? nullptr : &found->second;
    Id r;
    if (d && d->op == Op::Const) {
      r = emit(out, Op::Const, {}, d->bits & 0xffffffffu, access);
    } else if (d && d->op == Op::LocalGet) {
      refuse(access,
             "a u32 local variable, which may already hold a wrapped offset; compute the offset from values "
             "(or in a u64 Var) instead");
    } else if (d && d->op == Op::For && (largest(d->args[0]) >> 32 || largest(d->args[1]) >> 32)) {
      refuse(access,
             "the induction of a loop whose u32 bounds may have wrapped; loop over offsets within a row "
             "and add the row's offset in the index instead");
    } else if (d && d->type == ScalarType::u32 &&
               (d->op == Op::Add || d->op == Op::Sub || d->op == Op::Mul || d->op == Op::Div || d->op == Op::Rem ||
                d->op == Op::Min || d->op == Op::Max || d->op == Op::BitAnd || d->op == Op::BitOr ||
                d->op == Op::BitXor || d->op == Op::Shl || d->op == Op::Shr)) {
      Id a = widen(d->args[0], access, out, memo), b = widen(d->args[1], access, out, memo);
      r = emit(out, d->op, {a, b}, 0, access);
    } else if (d && d->op == Op::Select && d->type == ScalarType::u32) {
      Id a = widen(d->args[1], access, out, memo), b = widen(d->args[2], access, out, memo);
      r = emit(out, Op::Select, {d->args[0], a, b}, 0, access);
    } else {
      r = emit(out, Op::Cast, {id}, 0, access);  // a leaf: its u32 value, zero-extended
    }
    memo[id] = r;
    return r;
  }

  [[noreturn]] void refuse(const Inst& access, const std::string& why) const {
    std::string loc = access.loc.str();
    throw Error(
        fmt::format("kernel {}: tensor '{}' needs 64-bit offsets (it may hold more than 2^31 elements), but "
                    "its index{} goes through {}",
                    f_.name, f_.params.at(access.op == Op::CopyAsync ? copy_source(access) : access.param).name,
                    loc.empty() ? "" : " at " + loc, why));
  }

  // The u32 value of `id` where it is computed from constants alone (baked constexprs included).
  std::optional<uint32_t> exact(Id id) {
    auto found = def_.find(id);
    if (found == def_.end() || found->second.type != ScalarType::u32) return std::nullopt;
    const Def& d = found->second;
    if (d.op == Op::Const) return static_cast<uint32_t>(d.bits);
    if (d.args.size() != 2) return std::nullopt;
    std::optional<uint32_t> a = exact(d.args[0]), b = exact(d.args[1]);
    if (!a || !b) return std::nullopt;
    switch (d.op) {
      case Op::Add: return *a + *b;
      case Op::Sub: return *a - *b;
      case Op::Mul: return *a * *b;
      case Op::Div: return *b ? std::optional<uint32_t>(*a / *b) : std::nullopt;
      case Op::Rem: return *b ? std::optional<uint32_t>(*a % *b) : std::nullopt;
      case Op::Min: return std::min(*a, *b);
      case Op::Max: return std::max(*a, *b);
      case Op::BitAnd: return *a & *b;
      case Op::BitOr: return *a | *b;
      case Op::BitXor: return *a ^ *b;
      case Op::Shl: return *a << (*b & 31u);
      case Op::Shr: return *a >> (*b & 31u);
      default: return std::nullopt;
    }
  }

  // An upper bound of the value `id` would have if its u32 arithmetic did not wrap (saturating).
  uint64_t largest(Id id) {
    if (auto it = largest_.find(id); it != largest_.end()) return it->second;
    if (std::optional<uint32_t> v = exact(id)) return largest_[id] = *v;
    constexpr uint64_t kAny = 0xffffffffu, kMax = ~uint64_t{0};
    auto found = def_.find(id);
    const Def* d = found == def_.end() ? nullptr : &found->second;
    auto arg = [&](int i) { return largest(d->args[i]); };
    auto add = [](uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; };
    auto mul = [](uint64_t a, uint64_t b) { return b != 0 && a > kMax / b ? kMax : a * b; };
    uint64_t r = kAny;
    if (d && d->type == ScalarType::u32) switch (d->op) {
        case Op::Const: r = d->bits & kAny; break;
        case Op::ThreadId:
        case Op::ThreadgroupSize:
        case Op::SimdLane:
        case Op::SimdGroup: r = 1024; break;
        case Op::ProgramId:
        case Op::GridSize: r = 0x7fffffffu; break;
        case Op::Add: r = add(arg(0), arg(1)); break;
        case Op::Mul: r = mul(arg(0), arg(1)); break;
        case Op::Shl: r = arg(1) >= 32 ? kMax : mul(arg(0), uint64_t{1} << arg(1)); break;
        case Op::Div:
        case Op::Shr: r = std::min(arg(0), kAny); break;
        case Op::Rem: r = std::min(arg(0), arg(1)); break;
        case Op::Min: r = std::min(arg(0), arg(1)); break;
        case Op::Max:
        case Op::Select: r = std::max(arg(d->op == Op::Select ? 1 : 0), arg(d->op == Op::Select ? 2 : 1)); break;
        default: break;
      }
    largest_[id] = r;
    return r;
  }

  Function& f_;
  std::set<int> wide_;
  std::unordered_map<Id, uint64_t> largest_;
  std::unordered_map<Id, Def> def_;
};

}  // namespace

ir::Function widen_indices(const ir::Function& f, const std::set<std::string>& wide) {
  Function g = f;
  if (wide.empty()) return g;
  Widener(g, wide).block(g.body);
  return g;
}

}  // namespace mtile::passes
