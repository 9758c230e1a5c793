// eliminate_dead_code: removes instructions whose only effect is an unused result, unused
// threadgroup arrays and locals that are never read, and empty ifs; repeats until nothing changes.
#include <unordered_map>

#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

void count_uses(const Block& b, std::unordered_map<Id, int>& uses) {
  for_each_inst(b, [&](const Inst& in) {
    for (Id a : in.args) ++uses[a];
    for (const CallArg& a : in.call_args)
      if (a.kind == CallArg::Kind::Value) ++uses[a.value];
    bool reads_slot = in.op == Op::LocalGet || accesses_threadgroup_array(in);
    if (reads_slot) ++uses[in.param];
  });
}

bool removable(const Inst& in, const std::unordered_map<Id, int>& uses) {
  auto used = [&](Id id) { return uses.count(id) && uses.at(id) > 0; };
  if (in.op == Op::If) return in.blocks[0].insts.empty() && in.blocks[1].insts.empty();
  if (in.op == Op::For) return in.blocks[0].insts.empty();  // a counted loop with no body does nothing
  if (in.op == Op::TgArrayDecl || in.op == Op::LocalDecl) return !used(in.result);
  return is_pure(in.op) && !used(in.result);
}

bool sweep(Block& b, const std::unordered_map<Id, int>& uses, const std::unordered_map<Id, bool>& dead_locals) {
  bool changed = false;
  std::vector<Inst> out;
  for (Inst& in : b.insts) {
    for (Block& sub : in.blocks) changed |= sweep(sub, uses, dead_locals);
    bool dead_set = in.op == Op::LocalSet && dead_locals.count(in.param);
    if (dead_set || removable(in, uses)) {
      changed = true;
      continue;
    }
    out.push_back(std::move(in));
  }
  b.insts = std::move(out);
  return changed;
}

}  // namespace

ir::Function eliminate_dead_code(const ir::Function& f) {
  Function g = f;
  for (bool changed = true; changed;) {
    std::unordered_map<Id, int> uses;
    count_uses(g.body, uses);
    // A local nobody reads: its sets go too (they do not count as reads).
    std::unordered_map<Id, bool> dead_locals;
    for_each_inst(g.body, [&](const Inst& in) {
      if (in.op == Op::LocalDecl && !uses.count(in.result)) dead_locals[in.result] = true;
    });
    changed = sweep(g.body, uses, dead_locals);
  }
  return g;
}

}  // namespace mtile::passes
