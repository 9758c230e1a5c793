// specialize_constexprs: bakes chosen constexpr parameters into the code as u32 constants.
// The parameters stay in the signature (the launch ABI does not change); their reads go.
#include <fmt/format.h>

#include "passes/pipeline.hpp"

namespace mtile::passes {

ir::Function specialize_constexprs(const ir::Function& f, const std::map<std::string, uint32_t>& values) {
  for (const auto& [name, value] : values) {
    int i = f.param_index(name);
    if (i < 0 || f.params[i].kind != ir::ParamKind::Constexpr) {
      std::string have;
      for (const ir::Param& p : f.params)
        if (p.kind == ir::ParamKind::Constexpr) have += (have.empty() ? "" : ", ") + p.name;
      throw Error(fmt::format("kernel {}: no constexpr parameter '{}' to set to {} (constexprs: {})", f.name, name,
                              value, have.empty() ? "none" : have));
    }
  }
  ir::Function g = f;
  ir::for_each_inst(g.body, [&](ir::Inst& in) {
    if (in.op != ir::Op::ConstexprRef) return;
    auto it = values.find(g.params.at(in.param).name);
    if (it == values.end()) return;
    in.op = ir::Op::Const;
    in.bits = it->second;
    in.param = -1;
  });
  return g;
}

}  // namespace mtile::passes
