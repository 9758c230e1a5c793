// fold_constants: evaluates arithmetic, casts and selects whose operands are all constants (with
// the CPU engine's own scalar rules, src/ir/eval.cpp), and keeps only the taken side of an `if`
// on a constant condition. Integer division by a constant zero is left for run time to report.
//
// It also puts the constants of integer sums outermost: `a + (b + 1)` and `(a + 1) + b` become
// `(a + b) + 1`, and `(a + 1) + 2` becomes `a + 3`. Integer addition wraps, so it is associative
// and this never changes a value; it gives every spelling of an offset index the one form
// `base + k` that vectorize_memory groups (after eliminate_common_subexpressions merges the
// `a + b` of neighbouring accesses).
#include <unordered_map>

#include "ir/eval.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

class Folder {
 public:
  explicit Folder(Function& f) : f_(f) {}

  void block(Block& b) {
    std::vector<Inst> out;
    out.reserve(b.insts.size());
    for (Inst& in : b.insts) {
      if (in.op == Op::If) {
        if (const Scalar* c = constant(in.args[0])) {
          Block taken = std::move(in.blocks[c->u ? 0 : 1]);
          block(taken);
          for (Inst& t : taken.insts) out.push_back(std::move(t));
          continue;
        }
      }
      for (Block& sub : in.blocks) block(sub);
      fold(in);
      if (in.op == Op::Add && is_integer(in.type)) hoist_constant(in, out);
      if (in.op == Op::Const) consts_[in.result] = scalar_from_bits(in.type, in.bits);
      out.push_back(std::move(in));
    }
    b.insts = std::move(out);
  }

 private:
  const Scalar* constant(Id id) const {
    auto it = consts_.find(id);
    return it == consts_.end() ? nullptr : &it->second;
  }

  // A sum's operand as term + constant: `x + k` (either order) is (x, k), a constant (none, k),
  // anything else (itself, 0).
  struct Split {
    Id term;
    uint64_t k;
    bool has_k;
  };
  Split split(Id id) const {
    if (const Scalar* c = constant(id)) return {kNoId, scalar_bits(types_.at(id), *c), true};
    if (auto it = offsets_.find(id); it != offsets_.end()) return {it->second.first, it->second.second, true};
    return {id, 0, false};
  }

  Id emit(std::vector<Inst>& out, Op op, ScalarType t, std::vector<Id> args, uint64_t bits, const Inst& at) {
    Inst in;
    in.op = op;
    in.type = t;
    in.args = std::move(args);
    in.bits = bits;
    in.result = f_.fresh_id();
    in.loc = at.loc;
    types_[in.result] = t;
    if (op == Op::Const) consts_[in.result] = scalar_from_bits(t, bits);
    out.push_back(std::move(in));
    return out.back().result;
  }

  // Rewrites `in` (an integer add that did not fold) to `terms + k`, emitting the sum of the
  // terms before it, where an operand carries a constant of its own.
  void hoist_constant(Inst& in, std::vector<Inst>& out) {
    Split a = split(in.args[0]), b = split(in.args[1]);
    bool nested = (a.has_k && a.term != kNoId) || (b.has_k && b.term != kNoId);
    if (!nested) {
      if (a.has_k != b.has_k) offsets_[in.result] = a.has_k ? std::pair{b.term, a.k} : std::pair{a.term, b.k};
      return;
    }
    ScalarType t = in.type;
    uint64_t k = scalar_bits(t, eval_binary(Op::Add, t, scalar_from_bits(t, a.k), scalar_from_bits(t, b.k)));
    Id term = a.term == kNoId ? b.term : b.term == kNoId ? a.term : emit(out, Op::Add, t, {a.term, b.term}, 0, in);
    in.args = {term, emit(out, Op::Const, t, {}, k, in)};
    offsets_[in.result] = {term, k};
  }

  void fold(Inst& in) {
    if (in.args.empty() || !(is_unary(in.op) || is_binary(in.op) || in.op == Op::Select || in.op == Op::Fma)) return;
    std::vector<Scalar> v;
    for (Id a : in.args) {
      const Scalar* c = constant(a);
      if (!c) return;
      v.push_back(*c);
    }
    Scalar r;
    if (in.op == Op::Select) {
      r = v[0].u ? v[1] : v[2];
    } else if (in.op == Op::Fma) {
      r = eval_fma(in.type, v[0], v[1], v[2]);
    } else if (is_unary(in.op)) {
      r = eval_unary(in.op, types_.at(in.args[0]), in.type, v[0]);
    } else {
      if ((in.op == Op::Div || in.op == Op::Rem) && !is_float(in.type) && scalar_bits(in.type, v[1]) == 0) return;
      r = eval_binary(in.op, types_.at(in.args[0]), v[0], v[1]);
    }
    in.op = Op::Const;
    in.args.clear();
    in.bits = scalar_bits(in.type, r);
  }

 public:
  std::unordered_map<Id, ScalarType> types_;

 private:
  Function& f_;
  std::unordered_map<Id, Scalar> consts_;
  std::unordered_map<Id, std::pair<Id, uint64_t>> offsets_;  // `term + k` sums: id -> (term, k)
};

}  // namespace

ir::Function fold_constants(const ir::Function& f) {
  Function g = f;
  Folder folder(g);
  for_each_inst(g.body, [&](const Inst& in) {
    if (in.result != kNoId) folder.types_[in.result] = in.type;
  });
  folder.block(g.body);
  return g;
}

}  // namespace mtile::passes
