// fold_constants: evaluates arithmetic, casts and selects whose operands are all constants (with
// the CPU engine's own scalar rules, src/ir/eval.cpp), and keeps only the taken side of an `if`
// on a constant condition. Integer division by a constant zero is left for run time to report.
#include <unordered_map>

#include "ir/eval.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

class Folder {
 public:
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
  std::unordered_map<Id, Scalar> consts_;
};

}  // namespace

ir::Function fold_constants(const ir::Function& f) {
  Function g = f;
  Folder folder;
  for_each_inst(g.body, [&](const Inst& in) {
    if (in.result != kNoId) folder.types_[in.result] = in.type;
  });
  folder.block(g.body);
  return g;
}

}  // namespace mtile::passes
