// The pipeline: the one ordered list of passes every backend's code goes through.
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

struct Step {
  const char* name;
  ir::Function (*run)(const ir::Function&, const PipelineOptions&);
};

const Step kSteps[] = {
    {"inline_calls", [](const ir::Function& f, const PipelineOptions&) { return inline_calls(f); }},
    {"specialize_constexprs",
     [](const ir::Function& f, const PipelineOptions& o) { return specialize_constexprs(f, o.bake); }},
    {"lower_threadgroup_reductions",
     [](const ir::Function& f, const PipelineOptions&) { return lower_threadgroup_reductions(f); }},
    {"fold_constants", [](const ir::Function& f, const PipelineOptions&) { return fold_constants(f); }},
    {"vectorize_memory", [](const ir::Function& f, const PipelineOptions&) { return vectorize_memory(f); }},
    {"eliminate_dead_code", [](const ir::Function& f, const PipelineOptions&) { return eliminate_dead_code(f); }},
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

ir::Function run_pipeline(const ir::Function& f, const PipelineOptions& opts) {
  if (opts.after_each) opts.after_each("trace", f);
  ir::Function cur = f;
  for (const Step& s : kSteps) {
    cur = s.run(cur, opts);
    ir::canonicalize(cur);
    if (opts.verify) ir::verify(cur);
    if (opts.after_each) opts.after_each(s.name, cur);
  }
  return cur;
}

}  // namespace mtile::passes
