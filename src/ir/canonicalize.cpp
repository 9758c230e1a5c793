// canonicalize: gives a function one text form whatever order the C++ compiler evaluated the
// DSL's operands in (GCC and Clang order overloaded-operator operands and call arguments
// differently, so the same kernel can trace in two orders).
//
// Within each run of instructions between side effects (stores, locals, barriers, control
// flow), the side-effect-free instructions are re-emitted depth-first, operands left to right:
// first the trees of values used after the run, in trace order (they come from separate
// statements), then the trees the closing instruction uses, in operand order, then the trees
// its nested blocks use. Ids are then renumbered in order of definition.
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "ir/slots.hpp"
#include "mtile/ir.hpp"

namespace mtile::ir {
namespace {

bool is_anchor(Op op) {
  switch (op) {
    case Op::Store:
    case Op::StoreVector:
    case Op::LocalDecl:
    case Op::LocalSet:
    case Op::Barrier:
    case Op::Fence:
    case Op::If:
    case Op::For:
    case Op::Call:
    case Op::TgArrayDecl:
    case Op::TgReduceSum:
    case Op::TgReduceMax:
    case Op::TgReduceMin:
    case Op::Atomic:
    case Op::CopyAsync:
    case Op::CopyAsyncCommit:
    case Op::CopyAsyncWait:
    case Op::MmaAsync:
    case Op::MmaFence:
    case Op::MbarrierInit:
    case Op::MbarrierArrive:
    case Op::MbarrierWait:
    case Op::MmaWait:
    case Op::Loop:
    case Op::Break:
    case Op::Continue:
    case Op::Return: return true;
    default: return false;
  }
}

// Operands an instruction reads, in order (value ids only).
std::vector<Id> operands(const Inst& in) {
  std::vector<Id> ids = in.args;
  for (const CallArg& a : in.call_args)
    if (a.kind == CallArg::Kind::Value) ids.push_back(a.value);
  return ids;
}

void uses_in(const Block& b, std::unordered_set<Id>& used) {
  for_each_inst(b, [&](const Inst& in) {
    for (Id id : operands(in)) used.insert(id);
  });
}

void schedule_block(Block& b) {
  for (Inst& in : b.insts)
    for (Block& sub : in.blocks) schedule_block(sub);
  std::vector<Inst> out;
  out.reserve(b.insts.size());
  size_t start = 0;
  while (start < b.insts.size()) {
    size_t end = start;
    while (end < b.insts.size() && !is_anchor(b.insts[end].op)) ++end;
    // Region [start, end) of movable instructions, closed by the anchor at `end` (if any).
    std::unordered_map<Id, size_t> def;  // id -> index in b.insts
    for (size_t i = start; i < end; ++i) def[b.insts[i].result] = i;
    std::unordered_set<Id> used_inside;
    for (size_t i = start; i < end; ++i)
      for (Id id : operands(b.insts[i])) used_inside.insert(id);
    std::vector<bool> done(end - start, false);
    std::function<void(size_t)> emit = [&](size_t i) {
      if (done[i - start]) return;
      done[i - start] = true;
      for (Id id : operands(b.insts[i])) {
        auto it = def.find(id);
        if (it != def.end()) emit(it->second);
      }
      out.push_back(std::move(b.insts[i]));
    };
    std::unordered_set<Id> anchor_uses;
    if (end < b.insts.size()) {
      for (Id id : operands(b.insts[end])) anchor_uses.insert(id);
      std::unordered_set<Id> nested;
      for (const Block& sub : b.insts[end].blocks) uses_in(sub, nested);
      anchor_uses.insert(nested.begin(), nested.end());
    }
    for (size_t i = start; i < end; ++i) {
      Id r = b.insts[i].result;
      if (!used_inside.count(r) && !anchor_uses.count(r)) emit(i);  // roots used later (or never)
    }
    if (end < b.insts.size()) {
      for (Id id : operands(b.insts[end])) {
        auto it = def.find(id);
        if (it != def.end()) emit(it->second);
      }
      // Values only the anchor's nested blocks use: their roots in trace order, depth-first.
      for (size_t i = start; i < end; ++i)
        if (!used_inside.count(b.insts[i].result)) emit(i);
      out.push_back(std::move(b.insts[end]));
    }
    start = end + 1;
  }
  b.insts = std::move(out);
}

void renumber(Function& f) {
  std::unordered_map<Id, Id> map;
  Id next = 0;
  auto fresh = [&](Id old) {
    if (old == kNoId) return;
    map[old] = next++;
  };
  std::function<void(Block&)> walk = [&](Block& b) {
    for (Inst& in : b.insts) {
      for (Id& a : in.args) a = map.at(a);
      for (CallArg& a : in.call_args)
        if (a.kind == CallArg::Kind::Value) a.value = map.at(a.value);
      if (names_slot(in)) in.param = map.at(in.param);
      if (in.op == Op::For) {
        fresh(in.result);
        in.result = map.at(in.result);
        walk(in.blocks[0]);
        continue;
      }
      for (Block& sub : in.blocks) walk(sub);
      if (in.result != kNoId) {
        fresh(in.result);
        in.result = map.at(in.result);
      }
    }
  };
  walk(f.body);
  f.next_id = next;
}

}  // namespace

void canonicalize(Function& f) {
  schedule_block(f.body);
  renumber(f);
}

}  // namespace mtile::ir
