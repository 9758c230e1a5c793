// eliminate_common_subexpressions: an instruction that computes what an earlier one in scope
// already computed (same op, type, operands and attributes) is dropped and its uses read the
// earlier value. Pure arithmetic always qualifies; a load or a local's read qualifies only while
// nothing may have written its memory or local since: every store, barrier, call or nested block
// that writes it starts a new "epoch" that is part of the key (an async copy writes its array; a
// wait for async copies, like a barrier, every slot). Simdgroup operations (Mma among them) are
// not pure: they are never merged, so each stays where every lane executes it. A nested block
// sees the values of the blocks around it (they dominate it), but its own values stay inside.
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>

#include "ir/slots.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

// What a load or a local read depends on: a tensor, a threadgroup array or a local.
using Slot = std::pair<int, Id>;  // (kind: 0 device tensor, 1 threadgroup array, 2 local; id)

struct Key {
  Op op;
  ScalarType type;
  std::vector<Id> args;
  uint64_t bits;
  int param;
  MemSpace space;
  uint8_t lanes;
  uint64_t epoch;  // of the slot a memory read depends on
  auto tie() const { return std::tie(op, type, args, bits, param, space, lanes, epoch); }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

std::optional<Slot> read_slot(const Inst& in) {
  if (in.op == Op::Load || in.op == Op::LoadVector) return Slot{in.space == MemSpace::Device ? 0 : 1, in.param};
  if (in.op == Op::LocalGet) return Slot{2, in.param};
  return std::nullopt;
}

// The slots an instruction (and the blocks under it) may write; `all` for a barrier, a fence or a
// call, after which no memory read may be reused. A store to a tensor writes every tensor that may share
// its memory (KernelSpec::may_alias).
void writes(const Function& f, const Inst& in, std::set<Slot>& out, bool& all) {
  auto one = [&](const Inst& i) {
    if (i.op == Op::Store || i.op == Op::StoreVector || i.op == Op::Atomic) {
      out.insert({i.space == MemSpace::Device ? 0 : 1, i.param});
      if (i.space == MemSpace::Device)
        for (size_t p = 0; p < f.params.size(); ++p)
          if (may_share_memory(f, static_cast<int>(p), i.param)) out.insert({0, static_cast<int>(p)});
    }
    if (is_async_copy(i.op)) out.insert({1, i.param});
    if (i.op == Op::LocalSet) out.insert({2, i.param});
    // Waiting for async copies or on an mbarrier completes writes to threadgroup memory, as a barrier does.
    if (i.op == Op::Barrier || i.op == Op::Fence || i.op == Op::Call || i.op == Op::CopyAsyncWait || is_mbarrier(i.op))
      all = true;
  };
  one(in);
  for (const Block& sub : in.blocks) for_each_inst(sub, one);
}

class Eliminator {
 public:
  explicit Eliminator(const Function& f) : f_(f) {}
  void block(Block& b, std::vector<std::map<Key, Id>>& scopes) {
    scopes.emplace_back();
    std::vector<Inst> out;
    out.reserve(b.insts.size());
    for (Inst& in : b.insts) {
      for (Id& a : in.args) a = resolve(a);
      for (CallArg& a : in.call_args)
        if (a.kind == CallArg::Kind::Value) a.value = resolve(a.value);
      if (!in.blocks.empty() || in.op == Op::Barrier || in.op == Op::Fence || in.op == Op::Call || in.op == Op::Store ||
          in.op == Op::StoreVector || in.op == Op::LocalSet || in.op == Op::Atomic || is_async_copy(in.op) ||
          in.op == Op::CopyAsyncWait || is_mbarrier(in.op)) {
        // What it writes is stale from here on, and inside its blocks (a loop runs them again).
        std::set<Slot> w;
        bool all = false;
        writes(f_, in, w, all);
        bump(w, all);
        for (Block& sub : in.blocks) block(sub, scopes);
        bump(w, all);
        out.push_back(std::move(in));
        continue;
      }
      if (in.result == kNoId || !is_pure(in.op) || in.op == Op::LoadVector) {
        out.push_back(std::move(in));
        continue;
      }
      auto slot = read_slot(in);
      Key key{in.op, in.type, in.args, in.bits, in.param, in.space, in.lanes, slot ? epoch(*slot) : 0};
      if (Id found = lookup(scopes, key); found != kNoId) {
        subst_[in.result] = found;
        if (!in.name.empty() && names_.count(found) == 0) names_[found] = in.name;
        continue;
      }
      scopes.back()[key] = in.result;
      out.push_back(std::move(in));
    }
    b.insts = std::move(out);
    scopes.pop_back();
  }

  void rename(Block& b) {
    for_each_inst(b, [&](Inst& in) {
      if (auto it = names_.find(in.result); in.result != kNoId && it != names_.end() && in.name.empty())
        in.name = it->second;
    });
  }

 private:
  Id resolve(Id id) const {
    auto it = subst_.find(id);
    return it == subst_.end() ? id : it->second;
  }
  static Id lookup(const std::vector<std::map<Key, Id>>& scopes, const Key& key) {
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it)
      if (auto f = it->find(key); f != it->end()) return f->second;
    return kNoId;
  }
  uint64_t epoch(const Slot& s) const {
    auto it = epochs_.find(s);
    return (it == epochs_.end() ? 0 : it->second) + global_;
  }
  void bump(const std::set<Slot>& w, bool all) {
    if (all) global_ += 1ull << 32;  // every slot's epoch moves
    for (const Slot& s : w) ++epochs_[s];
  }

  const Function& f_;
  std::unordered_map<Id, Id> subst_;
  std::unordered_map<Id, std::string> names_;
  std::map<Slot, uint64_t> epochs_;
  uint64_t global_ = 0;
};

}  // namespace

ir::Function eliminate_common_subexpressions(const ir::Function& f) {
  Function g = f;
  Eliminator e(f);
  std::vector<std::map<Key, Id>> scopes;
  e.block(g.body, scopes);
  e.rename(g.body);
  return g;
}

}  // namespace mtile::passes
