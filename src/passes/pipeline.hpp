// The optimising pipeline: one ordered list of passes (pipeline.cpp), each in its own file.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mtile/compile.hpp"
#include "mtile/ir.hpp"

namespace mtile::passes {

// The passes, in pipeline order. Each takes and returns a whole function.
ir::Function inline_calls(const ir::Function& f);
ir::Function specialize_constexprs(const ir::Function& f, const std::map<std::string, uint32_t>& values);
// wide: tensor parameters that may hold more than 2^31 elements; their accesses get u64 offsets.
ir::Function widen_indices(const ir::Function& f, const std::set<std::string>& wide);
// tpg: the threads per threadgroup of every launch; 0 leaves the function as it is.
ir::Function specialize_threadgroup_size(const ir::Function& f, uint32_t tpg);
// simd_width: lanes of a simdgroup on the target.
ir::Function lower_threadgroup_reductions(const ir::Function& f, uint32_t simd_width);
// max_bytes: the target's widest access; wider load_n/store_n become narrower or scalar accesses.
ir::Function split_vector_accesses(const ir::Function& f, uint32_t max_bytes);
ir::Function fold_constants(const ir::Function& f);
ir::Function propagate_copies(const ir::Function& f);
ir::Function eliminate_common_subexpressions(const ir::Function& f);
ir::Function hoist_invariant_loads(const ir::Function& f);
// max_bytes: the target's widest access (16 on CUDA); 0 forms none.
ir::Function vectorize_memory(const ir::Function& f, uint32_t max_bytes);
ir::Function eliminate_dead_code(const ir::Function& f);

}  // namespace mtile::passes
