// Stable text form of the IR: one instruction a line, ids as %N, callees printed after their caller.
#include <fmt/format.h>

#include <map>
#include <set>

#include "ir/slots.hpp"
#include "mtile/ir.hpp"

namespace mtile::ir {
namespace {

std::string const_text(ScalarType t, uint64_t bits) {
  switch (t) {
    case ScalarType::u32: return fmt::format("{}", static_cast<uint32_t>(bits));
    case ScalarType::i32: return fmt::format("{}", static_cast<int32_t>(static_cast<uint32_t>(bits)));
    case ScalarType::u64: return fmt::format("{}", bits);
    case ScalarType::i64: return fmt::format("{}", static_cast<int64_t>(bits));
    case ScalarType::boolean: return bits ? "true" : "false";
    default: return fmt::format("{}", bits_float(static_cast<uint32_t>(bits)));
  }
}

class Printer {
 public:
  // Ids print as %N, or as %name when the DSL named them (named(), named Vars): %name.N where
  // two values share a name.
  explicit Printer(const Function& f) : f_(f) {
    std::map<std::string, int> count;
    for_each_inst(f.body, [&](const Inst& in) {
      if (in.result != kNoId && !in.name.empty()) ++count[in.name];
    });
    for_each_inst(f.body, [&](const Inst& in) {
      if (in.result == kNoId || in.name.empty()) return;
      refs_[in.result] = count[in.name] == 1 ? "%" + in.name : fmt::format("%{}.{}", in.name, in.result);
    });
  }

  void function(std::string& out, std::vector<const Function*>& callees) {
    out += fmt::format("kernel {}<{}> {}{}{}(", f_.name, type_name(f_.dtype), mode_name(f_.mode),
                       f_.tpg ? fmt::format(" tpg={}", f_.tpg) : "",
                       f_.resident ? fmt::format(" resident={}", f_.resident) : "");
    for (size_t i = 0; i < f_.params.size(); ++i) {
      const Param& p = f_.params[i];
      if (i) out += ", ";
      if (p.kind == ParamKind::Tensor)
        out +=
            fmt::format("{}: {} {}*{}", p.name, role_name(p.role), type_name(p.elem), p.may_alias ? " may_alias" : "");
      else if (p.kind == ParamKind::Scalar)
        out += fmt::format("{}: scalar {}", p.name, type_name(p.elem));
      else
        out += fmt::format("{}: constexpr u32", p.name);
    }
    out += ") {\n";
    block(out, f_.body, 1, callees);
    out += "}\n";
  }

 private:
  std::string ref(Id id) const {
    auto it = refs_.find(id);
    return it != refs_.end() ? it->second : fmt::format("%{}", id);
  }

  // ".keep" / ".stream" after a hinted access's op (CacheHint), "" for none.
  static std::string hint(const Inst& in) { return in.bits ? fmt::format(".{}", cache_hint_name(cache_hint(in))) : ""; }
  std::string mem(const Inst& in) const {
    if (in.space == MemSpace::Threadgroup) return "tg " + ref(in.param);
    if (in.param >= 0 && in.param < static_cast<int>(f_.params.size())) return f_.params[in.param].name;
    return fmt::format("param#{}", in.param);
  }

  std::string ids(const std::vector<Id>& a) const {
    std::string s;
    for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + ref(a[i]);
    return s;
  }

  void block(std::string& out, const Block& b, int depth, std::vector<const Function*>& callees) {
    std::string pad(2 * depth, ' ');
    for (const Inst& in : b.insts) {
      out += pad;
      const char* ty = type_name(in.type);
      switch (in.op) {
        case Op::Const:
          out += fmt::format("{} = const {} : {}", ref(in.result), const_text(in.type, in.bits), ty);
          break;
        case Op::ConstexprRef:
          out += fmt::format("{} = constexpr {} : u32", ref(in.result), f_.params.at(in.param).name);
          break;
        case Op::ProgramId:
        case Op::GridSize:
          out += fmt::format("{} = {}.{} : {}", ref(in.result), op_name(in.op), "xyz"[in.bits % 3], ty);
          break;
        case Op::ScalarRef:
          out += fmt::format("{} = scalar {} : {}", ref(in.result), f_.params.at(in.param).name, ty);
          break;
        case Op::Load:
          out += fmt::format("{} = load{} {}[{}]", ref(in.result), hint(in), mem(in), ref(in.args[0]));
          if (in.args.size() == 3) out += fmt::format(" mask {} else {}", ref(in.args[1]), ref(in.args[2]));
          out += fmt::format(" : {}", ty);
          break;
        case Op::Store:
          out += fmt::format("store{} {}[{}], {}", hint(in), mem(in), ref(in.args[0]), ref(in.args[1]));
          if (in.args.size() == 3) out += fmt::format(" mask {}", ref(in.args[2]));
          out += fmt::format(" : {}", ty);
          break;
        case Op::Atomic: {
          std::vector<Id> operands(in.args.begin() + 1, in.args.end());
          out += fmt::format("{} = atomic.{} {}[{}], {} : {}", ref(in.result),
                             atomic_name(static_cast<AtomicOp>(in.bits)), mem(in), ref(in.args[0]), ids(operands), ty);
          break;
        }
        case Op::LoadVector:
          out += fmt::format("{} = load{} {}[{}] x{} : {}", ref(in.result), hint(in), mem(in), ref(in.args[0]),
                             in.lanes, ty);
          break;
        case Op::LoadMatrix:  // `x4` for four matrices, as ldmatrix spells it
          out += fmt::format("{} = load_matrix{} {}[{}] x{} : {}", ref(in.result), in.bits ? ".trans" : "", mem(in),
                             ref(in.args[0]), in.lanes / 2, ty);
          break;
        case Op::CopyAsync: {
          const int src = static_cast<int>(in.bits);
          std::string tensor =
              src >= 0 && src < static_cast<int>(f_.params.size()) ? f_.params[src].name : fmt::format("param#{}", src);
          out += fmt::format("copy_async {}[{}], {}[{}] x{} : {}", mem(in), ref(in.args[0]), tensor, ref(in.args[1]),
                             in.lanes, ty);
          break;
        }
        case Op::CopyTile: {  // copy_tile.sw128 %tile[j], x[box %b0 x %b1 at %c0, %c1 of %d0 x %d1 strides %s1],
                              // %bars[i]
          const int src = copy_source(in);
          const uint32_t rank = copy_tile_rank(in);
          std::string tensor =
              src >= 0 && src < static_cast<int>(f_.params.size()) ? f_.params[src].name : fmt::format("param#{}", src);
          auto list = [&](size_t (*arg)(const Inst&, uint32_t), uint32_t from, const char* sep) {
            std::string r;
            for (uint32_t d = from; d < rank; ++d) {
              size_t a = arg(in, d);
              r += fmt::format("{}{}", d > from ? sep : "", a < in.args.size() ? ref(in.args[a]) : "?");
            }
            return r;
          };
          auto at = [&](size_t i) { return i < in.args.size() ? ref(in.args[i]) : std::string("?"); };
          out += fmt::format("copy_tile{} {}[{}], {}[box {} at {} of {}{}{}], {}[{}] : {}",
                             copy_tile_swizzle(in) ? ".sw128" : "", mem(in), at(0), tensor,
                             list(copy_tile_box_arg, 0, " x "), list(copy_tile_coord_arg, 0, ", "),
                             list(copy_tile_dim_arg, 0, " x "), rank > 1 ? " strides " : "",
                             list(copy_tile_stride_arg, 1, ", "), at(1), at(2), ty);
          break;
        }
        case Op::CopyAsyncCommit: out += "copy_async_commit"; break;
        case Op::CopyAsyncWait: out += fmt::format("copy_async_wait {}", in.bits); break;
        case Op::Mma: out += fmt::format("{} = mma {} : {} x{}", ref(in.result), ids(in.args), ty, in.lanes); break;
        case Op::MmaAsync: {  // mma_async.n128 %tile[a, a_k, a_row] (or {a0, ..., a7}), [b, b_k, b_row], c... : f32 x64
          const size_t b_arg = mma_async_b_arg(in), c_arg = mma_async_c_arg(in);
          std::vector<Id> a(in.args.begin(), in.args.begin() + std::min(b_arg, in.args.size()));
          std::vector<Id> c(in.args.begin() + std::min(c_arg, in.args.size()), in.args.end());
          auto at = [&](size_t i) { return i < in.args.size() ? ref(in.args[i]) : std::string("?"); };
          std::string a_text = mma_async_a_registers(in) ? fmt::format("{{{}}}", ids(a))
                                                         : fmt::format("{}[{}, {}, {}]", mem(in), at(0), at(1), at(2));
          out += fmt::format("{} = mma_async.n{}{}{} {}, {}[{}, {}, {}], {} : {} x{}", ref(in.result), mma_async_n(in),
                             mma_async_swizzle(in) ? ".sw128" : "", mma_async_b_kn(in) ? ".bkn" : "", a_text,
                             mma_async_a_registers(in) ? mem(in) : "", at(b_arg), at(b_arg + 1), at(b_arg + 2), ids(c),
                             ty, in.lanes);
          break;
        }
        case Op::MmaFence: out += "mma_fence"; break;
        case Op::MbarrierInit:  // mbarrier_init %bars[i], count
          out += fmt::format("mbarrier_init {}[{}], {}", mem(in), ref(in.args[0]), ref(in.args[1]));
          break;
        case Op::MbarrierArrive:
          if (in.bits == kArriveExpectBytes && in.args.size() == 2)
            out += fmt::format("mbarrier_arrive.expect {}[{}], {}", mem(in), ref(in.args[0]), ref(in.args[1]));
          else
            out += fmt::format("mbarrier_arrive{} {}[{}]", in.bits ? ".after_copies" : "", mem(in), ref(in.args[0]));
          break;
        case Op::MbarrierWait:
          out += fmt::format("mbarrier_wait {}[{}], {}", mem(in), ref(in.args[0]), ref(in.args[1]));
          break;
        case Op::MmaWait:
          out += fmt::format("{} = mma_wait {}, {} : {} x{}", ref(in.result), in.bits, ids(in.args), ty, in.lanes);
          break;
        case Op::Extract:
          out += fmt::format("{} = extract {}.{} : {}", ref(in.result), ref(in.args[0]), in.bits, ty);
          break;
        case Op::StoreVector: {
          std::vector<Id> values(in.args.begin() + (in.args.empty() ? 0 : 1), in.args.end());
          out +=
              fmt::format("store{} {}[{}] x{}, {} : {}", hint(in), mem(in), ref(in.args[0]), in.lanes, ids(values), ty);
          break;
        }
        case Op::LocalDecl: out += fmt::format("local {} : {} = {}", ref(in.result), ty, ref(in.args[0])); break;
        case Op::LocalGet: out += fmt::format("{} = get {} : {}", ref(in.result), ref(in.param), ty); break;
        case Op::LocalSet: out += fmt::format("set {}, {}", ref(in.param), ref(in.args[0])); break;
        case Op::TgArrayDecl: out += fmt::format("threadgroup_array {} : {}[{}]", ref(in.result), ty, in.bits); break;
        case Op::Barrier: out += "barrier"; break;
        case Op::Fence: out += in.bits ? "fence system" : "fence"; break;
        case Op::If:
          out += fmt::format("if {} {{\n", ref(in.args[0]));
          block(out, in.blocks[0], depth + 1, callees);
          if (!in.blocks[1].insts.empty()) {
            out += pad + "} else {\n";
            block(out, in.blocks[1], depth + 1, callees);
          }
          out += pad + "}";
          break;
        case Op::For:
          out += fmt::format("for {} = {} to {} step {} {{\n", ref(in.result), ref(in.args[0]), ref(in.args[1]),
                             ref(in.args[2]));
          block(out, in.blocks[0], depth + 1, callees);
          out += pad + "}";
          break;
        case Op::Loop:
          out += "loop {\n";
          block(out, in.blocks[0], depth + 1, callees);
          out += pad + "}";
          break;
        case Op::Break: out += "break"; break;
        case Op::Continue: out += "continue"; break;
        case Op::Return: out += "return"; break;
        case Op::Call: {
          std::string args;
          for (size_t i = 0; i < in.call_args.size(); ++i) {
            const CallArg& a = in.call_args[i];
            if (i) args += ", ";
            args += a.kind == CallArg::Kind::Tensor ? f_.params.at(a.param).name : ref(a.value);
          }
          out += fmt::format("{} = call @{}({}) : {}", ref(in.result), in.callee->name, args, ty);
          callees.push_back(in.callee.get());
          break;
        }
        default:
          out += fmt::format("{} = {}{}{} : {}", ref(in.result), op_name(in.op), in.args.empty() ? "" : " ",
                             ids(in.args), ty);
          break;
      }
      out += "\n";
    }
  }

  const Function& f_;
  std::map<Id, std::string> refs_;
};

}  // namespace

std::string print(const Function& f) {
  std::string out;
  std::vector<const Function*> pending;
  Printer(f).function(out, pending);
  std::set<const Function*> done{&f};
  while (!pending.empty()) {
    const Function* c = pending.back();
    pending.pop_back();
    if (!done.insert(c).second) continue;
    out += "\n";
    Printer(*c).function(out, pending);
  }
  return out;
}

}  // namespace mtile::ir
