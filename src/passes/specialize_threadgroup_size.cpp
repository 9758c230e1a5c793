// specialize_threadgroup_size: where every launch of the code uses one threadgroup size (a plan
// knows it from the dispatch rule), threadgroup_size becomes that constant and the function
// records it. Index arithmetic on it then folds, lower_threadgroup_reductions sizes its second
// stage (none at all for one simdgroup), and the CUDA code declares __launch_bounds__ so NVRTC
// never gives a thread more registers than the threadgroup can have.
#include "passes/pipeline.hpp"

namespace mtile::passes {

ir::Function specialize_threadgroup_size(const ir::Function& f, uint32_t tpg) {
  ir::Function g = f;
  if (tpg == 0) return g;
  g.tpg = tpg;
  ir::for_each_inst(g.body, [&](ir::Inst& in) {
    if (in.op != ir::Op::ThreadgroupSize) return;
    in.op = ir::Op::Const;
    in.bits = tpg;
  });
  return g;
}

}  // namespace mtile::passes
