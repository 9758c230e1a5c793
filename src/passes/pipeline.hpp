// The optimising pipeline: one ordered list of passes (pipeline.cpp), each in its own file.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::passes {

struct PipelineOptions {
  // Constexpr values to bake into the code (specialize_constexprs); others stay launch arguments.
  std::map<std::string, uint32_t> bake;
  // Run the verifier after every pass (on in debug and test builds and in the CLI).
  bool verify = true;
  // Called with the pass name and the IR after each step ("trace" first); used by `mtile inspect`.
  std::function<void(const std::string& pass, const ir::Function&)> after_each;
};

// The passes, in pipeline order. Each takes and returns a whole function.
ir::Function inline_calls(const ir::Function& f);
ir::Function specialize_constexprs(const ir::Function& f, const std::map<std::string, uint32_t>& values);
ir::Function lower_threadgroup_reductions(const ir::Function& f);
ir::Function fold_constants(const ir::Function& f);
ir::Function vectorize_memory(const ir::Function& f);
ir::Function eliminate_dead_code(const ir::Function& f);

// Names of the passes in order, for `mtile inspect --pass`.
const std::vector<std::string>& pipeline_pass_names();
// Runs every pass in order. The result has no Call and no threadgroup_reduce_* instructions.
ir::Function run_pipeline(const ir::Function& f, const PipelineOptions& opts = {});

}  // namespace mtile::passes
