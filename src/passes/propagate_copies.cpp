// propagate_copies: a local that is never assigned after its declaration is a copy of its
// initial value: its reads become that value (the declaration dominates every read, and the value
// is defined before the declaration, so it is visible wherever the reads are). Such locals come
// from Vars that a kernel only reads, and from calls inlined with a result local that the callee
// sets at its top level. eliminate_dead_code removes the declarations left unread.
#include <unordered_map>
#include <unordered_set>

#include "passes/pipeline.hpp"

namespace mtile::passes {

ir::Function propagate_copies(const ir::Function& f) {
  using namespace ir;
  Function g = f;
  std::unordered_set<Id> assigned;
  std::unordered_map<Id, Id> init;  // local -> its initial value
  for_each_inst(g.body, [&](const Inst& in) {
    if (in.op == Op::LocalSet) assigned.insert(in.param);
    if (in.op == Op::LocalDecl) init[in.result] = in.args[0];
  });
  std::unordered_map<Id, Id> subst;  // LocalGet result -> the initial value
  for_each_inst(g.body, [&](const Inst& in) {
    if (in.op == Op::LocalGet && !assigned.count(in.param)) subst[in.result] = init.at(in.param);
  });
  if (subst.empty()) return g;
  for_each_inst(g.body, [&](Inst& in) {
    for (Id& a : in.args)
      if (auto it = subst.find(a); it != subst.end()) a = it->second;
    for (CallArg& a : in.call_args)
      if (auto it = subst.find(a.value); a.kind == CallArg::Kind::Value && it != subst.end()) a.value = it->second;
  });
  return g;
}

}  // namespace mtile::passes
