// vectorize_memory: turns runs of scalar loads (stores) of consecutive elements of a tensor or a
// threadgroup array into one LoadVector (StoreVector) of 2, 4 or 8 lanes, at most the target's
// widest access (16 bytes on CUDA; none for Metal), so a GPU moves them in one access instead of
// one per element (the fragments of an mma read from threadgroup memory: 32-bit pairs, not 16-bit
// elements).
//
// A group is the accesses of one block to one tensor (or array) at B+o, B+o+1, ..., B+o+(L-1),
// where "B+k" is `add %B, const k` (either operand order, any k below 2^32; fold_constants puts a
// sum's constants outermost, so `b + (c + 1)` reads as `(b + c) + 1`), B itself is k = 0, and o is
// a multiple of L (so 8 f32 values at B+0..B+7 make two groups of 4). Accesses are grouped within
// windows of 64 offsets (B+64w .. B+64w+63): a peer rank's slice of a symmetric tensor lies at
// B + rank * slot. It is formed only when:
//  - B is provably a multiple of L (divisibility.hpp), so B+o and the vector access are
//    aligned: tensors are aligned to the widest access (every launch checks it), threadgroup
//    arrays are declared so, and L * element size divides it;
//  - nothing between the first and the last access of the group (nested blocks included) could
//    observe the change of order: for loads no store to the memory; for stores no load and no
//    other store of it; no barrier or fence for either; and for an array no async copy, commit
//    or wait (a copy lands in it at its wait).
// Loads: a LoadVector goes where the first load was (B is defined before it, since every load's
// index is B or is computed from B) and each load becomes an Extract that keeps its id, so no
// use needs rewriting. Stores: one StoreVector where the last store was, when every stored value
// exists. Indices that are not provably aligned (e.g. `row * n` with n a launch argument) leave
// the code as it was.
#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "ir/slots.hpp"
#include "passes/divisibility.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

// Offsets k of `B + k` are grouped in windows of this many: a fragment's elements lie at B+0, B+1,
// B+8, B+9 (columns of an mma tile), a row's chunks at B+0 .. B+7.
constexpr uint32_t kWindow = 64;

struct Member {
  size_t pos;  // in the block
  uint32_t lane;
};

struct Group {
  MemSpace space;
  int tensor;  // a tensor parameter, or a threadgroup array's id
  Id base;
  uint8_t lanes;
  uint32_t offset;              // the group covers B+offset .. B+offset+lanes-1; offset % lanes == 0
  std::vector<Member> members;  // lanes relative to offset
  uint32_t window = 0;          // offsets relative to B + window (a multiple of kWindow)
  uint64_t hint = 0;            // the members' CacheHint: only accesses of one hint group
  size_t first() const {
    size_t p = members[0].pos;
    for (const Member& m : members) p = std::min(p, m.pos);
    return p;
  }
  size_t last() const {
    size_t p = members[0].pos;
    for (const Member& m : members) p = std::max(p, m.pos);
    return p;
  }
};

class Vectorizer {
 public:
  Vectorizer(Function& f, uint32_t max_bytes) : f_(f), div_(f), max_bytes_(max_bytes) {
    for_each_inst(f.body, [&](const Inst& in) {
      if (in.op == Op::TgArrayDecl) array_elem_[static_cast<int>(in.result)] = in.type;
    });
  }

  void block(Block& b) {
    for (Inst& in : b.insts)
      for (Block& sub : in.blocks) block(sub);
    group_loads(b);
    group_stores(b);
  }

 private:
  // The readings of an index as (B, k): itself at k = 0, and B at k for `add %B, const k`
  // (k = 0 included: the folder leaves `x + 0`).
  std::vector<std::pair<Id, uint32_t>> readings(Id index) const {
    std::vector<std::pair<Id, uint32_t>> r = {{index, 0}};
    const IndexDef* in = div_.def(index);
    if (in && in->op == Op::Add && is_index_type(in->type)) {
      for (int side = 0; side < 2; ++side)
        if (const IndexDef* c = div_.constant(in->args[side]); c && c->bits <= UINT32_MAX)
          r.push_back({in->args[1 - side], static_cast<uint32_t>(c->bits)});
    }
    return r;
  }

  ScalarType elem(MemSpace space, int param) const {
    return space == MemSpace::Device ? f_.params.at(param).elem : array_elem_.at(param);
  }

  // Unmasked accesses of types that live in memory as they do in registers: not bool or 64-bit
  // values, nor the 8- and 16-bit integers and fp8, which a load widens and a store narrows
  // (found by mtile fuzz: a group of them was given the widened type).
  bool is_access(const Inst& in, Op op) const {
    size_t unmasked = op == Op::Load ? 1 : 2;
    return in.op == op && in.type != ScalarType::boolean && in.args.size() == unmasked && in.type != ScalarType::u64 &&
           in.type != ScalarType::i64 && elem(in.space, in.param) == in.type;
  }

  // Whether an instruction between a group's first and last member could observe their reordering.
  bool conflicts(const Inst& in, MemSpace space, int tensor, bool for_stores) const {
    bool device = space == MemSpace::Device, conflict = false;
    auto check = [&](const Inst& i) {
      bool same = i.space == space && (device ? may_share_memory(f_, i.param, tensor) : i.param == tensor);
      bool store = i.op == Op::Store || i.op == Op::StoreVector || i.op == Op::Atomic;
      bool load = i.op == Op::Load || i.op == Op::LoadVector || i.op == Op::LoadMatrix || i.op == Op::MmaAsync;
      // An async copy reads its source tensor and writes its threadgroup array (its `param`),
      // which holds the data only after a wait.
      bool copy_reads = device && is_async_copy(i.op) && may_share_memory(f_, copy_source(i), tensor);
      bool copy_writes = !device && (i.op == Op::CopyAsyncCommit || i.op == Op::CopyAsyncWait ||
                                     (is_async_copy(i.op) && i.param == tensor));
      conflict |= i.op == Op::Barrier || i.op == Op::Fence || i.op == Op::Call || is_mbarrier(i.op) || copy_writes ||
                  (same && (store || (for_stores && load))) || (for_stores && copy_reads);
    };
    check(in);
    for (const Block& sub : in.blocks) for_each_inst(sub, check);
    return conflict;
  }

  // Groups among the device accesses `op` of b, each access in at most one group, widest first.
  std::vector<Group> find(const Block& b, Op op) {
    bool stores = op == Op::Store;
    using Key = std::tuple<MemSpace, int, Id, uint32_t, uint64_t>;  // (space, tensor or array, B, window, hint)
    std::vector<Key> keys;                                          // in order of first appearance
    std::map<Key, std::vector<Member>> candidates;
    for (size_t i = 0; i < b.insts.size(); ++i) {
      const Inst& in = b.insts[i];
      if (!is_access(in, op)) continue;
      for (auto [base, k] : readings(in.args[0])) {
        Key key{in.space, in.param, base, k - k % kWindow, in.bits};
        auto& c = candidates[key];
        if (c.empty()) keys.push_back(key);
        c.push_back({i, k % kWindow});
      }
    }
    std::vector<bool> used(b.insts.size(), false);
    std::vector<Group> groups;
    for (const Key& key : keys) {
      auto [space, tensor, base, window, hint] = key;
      size_t bytes = storage_bytes(elem(space, tensor));
      // Along the window (B+w .. B+w+63): B+4..B+7 of 8 f32 values is a group of its own.
      for (uint32_t offset = 0; offset < kWindow;) {
        uint32_t taken = 0;
        for (uint32_t lanes : {8u, 4u, 2u}) {
          if (lanes * bytes > max_bytes_ || div_.factor(base) < lanes || offset % lanes != 0) continue;
          Group g{space, tensor, base, static_cast<uint8_t>(lanes), offset, {}, window, hint};
          std::vector<int> seen(lanes, 0);
          for (const Member& m : candidates[key]) {
            if (m.lane < offset || m.lane >= offset + lanes || used[m.pos]) continue;
            g.members.push_back({m.pos, m.lane - offset});
            ++seen[m.lane - offset];
          }
          // Loads of one element may repeat (all become extracts); a repeated store's order matters.
          bool complete = true;
          for (int n : seen) complete &= stores ? n == 1 : n >= 1;
          if (!complete) continue;
          std::vector<bool> member(b.insts.size(), false);
          for (const Member& m : g.members) member[m.pos] = true;
          bool clear = true;
          for (size_t i = g.first() + 1; i < g.last() && clear; ++i)
            clear = member[i] || !conflicts(b.insts[i], g.space, g.tensor, stores);
          if (!clear) continue;
          for (const Member& m : g.members) used[m.pos] = true;
          groups.push_back(std::move(g));
          taken = lanes;
          break;
        }
        offset += taken ? taken : 1;
      }
    }
    return groups;
  }

  // The vector's first index, B + window + offset: new instructions (appended to `out`) when that
  // is not B, since an existing `add B, k` may be defined after the group's first member.
  Id first_index(const Group& g, std::vector<Inst>& out) {
    if (g.window + g.offset == 0) return g.base;
    const IndexDef* base = div_.def(g.base);
    ScalarType type = base ? base->type : ScalarType::u32;
    Inst c;
    c.op = Op::Const;
    c.type = type;
    c.bits = uint64_t{g.window} + g.offset;
    c.result = f_.fresh_id();
    Inst add;
    add.op = Op::Add;
    add.type = type;
    add.args = {g.base, c.result};
    add.result = f_.fresh_id();
    out.push_back(std::move(c));
    out.push_back(std::move(add));
    return out.back().result;
  }

  void group_loads(Block& b) {
    std::vector<Group> groups = find(b, Op::Load);
    if (groups.empty()) return;
    std::unordered_map<size_t, std::vector<Inst>> vector_before;  // position -> the LoadVector (and its index)
    std::unordered_map<size_t, std::pair<Id, uint32_t>> extract;  // position -> (vector, lane)
    for (const Group& g : groups) {
      const Inst& first = b.insts[g.first()];
      std::vector<Inst>& before = vector_before[g.first()];
      Inst v;
      v.op = Op::LoadVector;
      v.type = first.type;
      v.bits = g.hint;
      v.args = {first_index(g, before)};
      v.result = f_.fresh_id();
      v.param = g.tensor;
      v.space = g.space;
      v.lanes = g.lanes;
      v.loc = first.loc;
      for (const Member& m : g.members) extract[m.pos] = {v.result, m.lane};
      before.push_back(std::move(v));
    }
    std::vector<Inst> out;
    out.reserve(b.insts.size() + groups.size());
    for (size_t i = 0; i < b.insts.size(); ++i) {
      if (auto it = vector_before.find(i); it != vector_before.end())
        for (Inst& v : it->second) out.push_back(std::move(v));
      Inst& in = b.insts[i];
      if (auto it = extract.find(i); it != extract.end()) {
        in.op = Op::Extract;
        in.args = {it->second.first};
        in.bits = it->second.second;
        in.param = -1;
      }
      out.push_back(std::move(in));
    }
    b.insts = std::move(out);
  }

  void group_stores(Block& b) {
    std::vector<Group> groups = find(b, Op::Store);
    if (groups.empty()) return;
    std::unordered_map<size_t, std::vector<Inst>> vector_at;  // last store's position -> the StoreVector
    std::vector<bool> gone(b.insts.size(), false);
    for (const Group& g : groups) {
      const Inst& last = b.insts[g.last()];
      std::vector<Inst>& at = vector_at[g.last()];
      Inst v;
      v.op = Op::StoreVector;
      v.type = last.type;
      v.bits = g.hint;
      v.args.assign(1 + g.lanes, kNoId);
      v.args[0] = first_index(g, at);
      v.param = g.tensor;
      v.space = g.space;
      v.lanes = g.lanes;
      v.loc = last.loc;
      for (const Member& m : g.members) {
        v.args[1 + m.lane] = b.insts[m.pos].args[1];
        gone[m.pos] = true;
      }
      at.push_back(std::move(v));
    }
    std::vector<Inst> out;
    out.reserve(b.insts.size());
    for (size_t i = 0; i < b.insts.size(); ++i) {
      if (auto it = vector_at.find(i); it != vector_at.end())
        for (Inst& v : it->second) out.push_back(std::move(v));
      if (!gone[i]) out.push_back(std::move(b.insts[i]));
    }
    b.insts = std::move(out);
  }

  Function& f_;
  Divisibility div_;
  uint32_t max_bytes_;
  std::map<int, ScalarType> array_elem_;  // threadgroup arrays' element types, by id
};

}  // namespace

ir::Function vectorize_memory(const ir::Function& f, uint32_t max_bytes) {
  Function g = f;
  if (max_bytes < 4) return g;  // the target takes no vector accesses (Metal: its compiler merges them)
  Vectorizer(g, max_bytes).block(g.body);
  return g;
}

}  // namespace mtile::passes
