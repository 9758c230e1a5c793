// hoist_invariant_loads: a load that every thread makes of a read-only tensor at a constant index
// (eps_buf[0] of the norms, once inline_calls has put mt_rms_inv_scalar's body in the kernel)
// moves to the start of the kernel. There its latency overlaps the row's loads; where the author
// wrote it, after a reduction's barrier, the GPU compiler may not move it (a barrier orders
// memory), and every threadgroup waits for one more round trip to memory before its output.
//
// Only top-level loads before the first instruction that may return are moved, so a moved load
// runs in exactly the threads that ran it before; the tensor is read-only (an In parameter that
// nothing stores to), so moving the read earlier cannot change the value it reads.
#include <set>

#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

bool may_return(const ir::Inst& in) {
  bool found = in.op == ir::Op::Return;
  for (const ir::Block& b : in.blocks)
    ir::for_each_inst(b, [&](const ir::Inst& i) { found |= i.op == ir::Op::Return; });
  return found;
}

}  // namespace

ir::Function hoist_invariant_loads(const ir::Function& f) {
  ir::Function g = f;
  std::set<int> stored;
  ir::for_each_inst(g.body, [&](const ir::Inst& in) {
    bool writes = in.op == ir::Op::Store || in.op == ir::Op::StoreVector || in.op == ir::Op::Atomic;
    if (writes && in.space == ir::MemSpace::Device) stored.insert(in.param);
  });
  std::vector<ir::Inst>& top = g.body.insts;
  std::map<ir::Id, const ir::Inst*> consts;  // top-level constants seen so far
  std::vector<ir::Inst> hoisted, kept;
  size_t i = 0;
  for (; i < top.size() && !may_return(top[i]); ++i) {
    ir::Inst& in = top[i];
    if (in.op == ir::Op::Const) consts[in.result] = &in;
    bool invariant = in.op == ir::Op::Load && in.space == ir::MemSpace::Device && in.args.size() == 1 &&
                     consts.count(in.args[0]) && g.params.at(in.param).role == ir::Role::In && !stored.count(in.param);
    if (!invariant) {
      kept.push_back(in);
      continue;
    }
    ir::Inst index = *consts.at(in.args[0]);  // a copy, so the load does not wait for its definition
    index.result = g.fresh_id();
    index.name.clear();
    in.args[0] = index.result;
    hoisted.push_back(std::move(index));
    hoisted.push_back(in);
  }
  if (hoisted.empty()) return g;
  kept.insert(kept.end(), std::make_move_iterator(top.begin() + i), std::make_move_iterator(top.end()));
  hoisted.insert(hoisted.end(), std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
  top = std::move(hoisted);
  return g;
}

}  // namespace mtile::passes
