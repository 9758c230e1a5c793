// The pipeline: the one ordered list of passes every backend's code goes through.
#include "passes/pipeline.hpp"

#include <fmt/format.h>

namespace mtile::passes {
namespace {

using Run = ir::Function (*)(const ir::Function&, const Target&, const PipelineOptions&);

struct Step {
  const char* name;
  Run run;
};

const Step kSteps[] = {
    {"inline_calls", [](const ir::Function& f, const Target&, const PipelineOptions&) { return inline_calls(f); }},
    {"specialize_constexprs",
     [](const ir::Function& f, const Target&, const PipelineOptions& o) { return specialize_constexprs(f, o.bake); }},
    {"specialize_threadgroup_size",
     [](const ir::Function& f, const Target&, const PipelineOptions& o) {
       return specialize_threadgroup_size(f, o.tpg);
     }},
    {"widen_indices",
     [](const ir::Function& f, const Target&, const PipelineOptions& o) { return widen_indices(f, o.wide); }},
    {"lower_threadgroup_reductions",
     [](const ir::Function& f, const Target& t, const PipelineOptions&) {
       return lower_threadgroup_reductions(f, t.simd_width);
     }},
    {"split_vector_accesses", [](const ir::Function& f, const Target& t,
                                 const PipelineOptions&) { return split_vector_accesses(f, t.max_vector_bytes); }},
    {"fold_constants", [](const ir::Function& f, const Target&, const PipelineOptions&) { return fold_constants(f); }},
    {"propagate_copies",
     [](const ir::Function& f, const Target&, const PipelineOptions&) { return propagate_copies(f); }},
    {"eliminate_common_subexpressions",
     [](const ir::Function& f, const Target&, const PipelineOptions&) { return eliminate_common_subexpressions(f); }},
    {"hoist_invariant_loads",
     [](const ir::Function& f, const Target&, const PipelineOptions&) { return hoist_invariant_loads(f); }},
    {"vectorize_memory", [](const ir::Function& f, const Target& t,
                            const PipelineOptions&) { return vectorize_memory(f, t.max_vector_bytes); }},
    {"eliminate_dead_code",
     [](const ir::Function& f, const Target&, const PipelineOptions&) { return eliminate_dead_code(f); }},
};

}  // namespace

const std::vector<std::string>& pipeline_pass_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Step& s : kSteps) n.push_back(s.name);
    return n;
  }();
  return names;
}

ir::Function run_pipeline(const ir::Function& f, const Target& target, const PipelineOptions& opts) {
  if (opts.after_each) opts.after_each("trace", f);
  ir::Function cur = f;
  for (const Step& s : kSteps) {
    cur = s.run(cur, target, opts);
    // Verify before canonicalize, so that broken IR is blamed on the pass that made it.
    if (opts.verify) {
      try {
        ir::verify(cur);
      } catch (const Error& e) {
        throw InternalError(
            fmt::format("pass {} broke kernel {}<{}> (an mtile bug; please report it): {}\nIR after {}:\n{}", s.name,
                        f.name, type_name(f.dtype), e.what(), s.name, ir::print(cur)));
      }
    }
    ir::canonicalize(cur);
    if (opts.after_each) opts.after_each(s.name, cur);
  }
  return cur;
}

}  // namespace mtile::passes
