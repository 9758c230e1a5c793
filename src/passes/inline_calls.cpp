// inline_calls: splices each callee's body in place of its Call.
//  - a tensor parameter bound to a value argument: its loads become that value;
//  - a tensor parameter bound to a tensor argument: renamed to the caller's parameter;
//  - a constexpr parameter: its reads become the argument value;
//  - the callee's single store to its output: becomes the call's result (directly when the store
//    is in the callee's top-level block, through a local when it is under control flow).
// Nested calls are inlined first.
#include <fmt/format.h>

#include <unordered_map>

#include "ir/slots.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

struct Binding {
  bool is_value = false;
  Id value = kNoId;  // caller value
  int param = -1;    // caller tensor parameter
};

class Splicer {
 public:
  // result_local == kNoId: the output store is at the top level; its value becomes `result`.
  Splicer(Function& caller, const Function& callee, const Inst& call, Id result_local)
      : caller_(caller), callee_(callee), result_local_(result_local), out_(callee.output_param()) {
    size_t k = 0;
    bindings_.resize(callee.params.size());
    for (size_t i = 0; i < callee.params.size(); ++i) {
      if (static_cast<int>(i) == out_) continue;
      const CallArg& a = call.call_args.at(k++);
      if (a.kind == CallArg::Kind::Tensor)
        bindings_[i] = {false, kNoId, a.param};
      else
        bindings_[i] = {true, a.value, -1};
    }
  }

  void block(const Block& src, Block& dst) {
    for (const Inst& in : src.insts) inst(in, dst);
  }

  Id result = kNoId;  // the stored value, in direct mode

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("inline_calls: kernel {} calling {}: {}", caller_.name, callee_.name, what));
  }
  Id map(Id id) {
    auto it = ids_.find(id);
    if (it != ids_.end()) return it->second;
    Id fresh = caller_.fresh_id();
    ids_[id] = fresh;
    return fresh;
  }

  void inst(const Inst& in, Block& dst) {
    if (in.op == Op::Return) fail("the callee returns early (return_), which would end the caller's thread");
    bool vector = in.op == Op::LoadVector || in.op == Op::StoreVector;
    bool memory = in.op == Op::Load || in.op == Op::Store || in.op == Op::Atomic || vector;
    const Param* p = in.space == MemSpace::Device && in.param >= 0 && memory ? &callee_.params.at(in.param) : nullptr;
    // Vector accesses come from vectorize_memory, which runs after this pass; only a tensor
    // argument (a rename) can stand for them.
    if (vector && p && (in.param == out_ || bindings_[in.param].is_value))
      fail(fmt::format("a vector access to '{}', which the call binds to a value or returns", p->name));
    if (in.op == Op::ConstexprRef) {
      const Binding& b = bindings_.at(in.param);
      ids_[in.result] = b.value;  // constexpr arguments are always values
      return;
    }
    if (p && in.param == out_) {
      if (in.op == Op::Load) fail(fmt::format("the callee reads its output '{}'", p->name));
      if (result_local_ == kNoId) {
        result = map(in.args[1]);
        return;
      }
      Inst set;
      set.op = Op::LocalSet;
      set.type = in.type;
      set.param = result_local_;
      set.args = {map(in.args[1])};
      set.loc = in.loc;
      dst.insts.push_back(std::move(set));
      return;
    }
    if (p && bindings_[in.param].is_value) {
      if (in.op != Op::Load || in.args.size() != 1)
        fail(fmt::format("the callee {} '{}', which the call binds to a value (only plain loads may be replaced)",
                         in.op == Op::Load ? "masks its load of" : "writes", p->name));
      ids_[in.result] = bindings_[in.param].value;
      return;
    }
    if (is_async_copy(in.op)) {  // its source tensor is `bits`: renamed like a tensor argument
      int src = copy_source(in);
      if (src == out_ || bindings_.at(src).is_value)
        fail(fmt::format("a copy_async from '{}', which the call binds to a value or returns",
                         callee_.params[src].name));
    }
    Inst copy = in;
    if (in.op == Op::CopyAsync) copy.bits = static_cast<uint64_t>(bindings_[copy_source(in)].param);
    if (in.op == Op::CopyTile) copy.bits = copy_tile_bits(bindings_[copy_source(in)].param, copy_tile_swizzle(in));
    for (Id& a : copy.args) a = map(a);
    if (copy.result != kNoId) copy.result = map(in.result);
    if (p) copy.param = bindings_[in.param].param;
    if (names_slot(in)) copy.param = map(in.param);
    if (in.op == Op::Call) {
      for (CallArg& a : copy.call_args) {
        if (a.kind == CallArg::Kind::Value)
          a.value = map(a.value);
        else if (bindings_.at(a.param).is_value)
          fail("a nested call passes a value-bound tensor on as a tensor");
        else
          a.param = bindings_[a.param].param;
      }
    }
    for (size_t i = 0; i < in.blocks.size(); ++i) {
      copy.blocks[i].insts.clear();
      block(in.blocks[i], copy.blocks[i]);
    }
    dst.insts.push_back(std::move(copy));
  }

  Function& caller_;
  const Function& callee_;
  Id result_local_;
  int out_;
  std::vector<Binding> bindings_;
  std::unordered_map<Id, Id> ids_;
};

bool stores_output_at_top_level(const Function& callee) {
  int out = callee.output_param();
  for (const Inst& in : callee.body.insts)
    if (in.op == Op::Store && in.space == MemSpace::Device && in.param == out) return true;
  return false;
}

void inline_block(Function& f, Block& b, std::unordered_map<Id, Id>& subst,
                  std::unordered_map<Id, std::string>& names) {
  std::vector<Inst> out;
  out.reserve(b.insts.size());
  for (Inst& in : b.insts) {
    for (Block& sub : in.blocks) inline_block(f, sub, subst, names);
    if (in.op != Op::Call) {
      out.push_back(std::move(in));
      continue;
    }
    Function callee = inline_calls(*in.callee);  // nested calls first
    if (stores_output_at_top_level(callee)) {
      Block body;
      Splicer sp(f, callee, in, kNoId);
      sp.block(callee.body, body);
      for (Inst& bi : body.insts) out.push_back(std::move(bi));
      subst[in.result] = sp.result;
      if (!in.name.empty()) names[sp.result] = in.name;  // the call's name goes to its value
      continue;
    }
    // result local, initialised to zero, set by the callee's output store
    Inst zero;
    zero.op = Op::Const;
    zero.type = in.type;
    zero.bits = const_bits(in.type, 0);
    zero.result = f.fresh_id();
    Inst local;
    local.op = Op::LocalDecl;
    local.type = in.type;
    local.result = f.fresh_id();
    local.args = {zero.result};
    local.loc = in.loc;
    Id local_id = local.result;
    out.push_back(std::move(zero));
    out.push_back(std::move(local));
    Block body;
    Splicer(f, callee, in, local_id).block(callee.body, body);
    for (Inst& bi : body.insts) out.push_back(std::move(bi));
    Inst get;
    get.op = Op::LocalGet;
    get.type = in.type;
    get.param = local_id;
    get.result = in.result;
    get.name = in.name;
    get.loc = in.loc;
    out.push_back(std::move(get));
  }
  b.insts = std::move(out);
}

}  // namespace

ir::Function inline_calls(const ir::Function& f) {
  Function g = f;
  std::unordered_map<Id, Id> subst;  // call result -> the callee's stored value
  std::unordered_map<Id, std::string> names;
  inline_block(g, g.body, subst, names);
  if (!names.empty())
    for_each_inst(g.body, [&](Inst& in) {
      if (auto it = names.find(in.result); in.result != kNoId && it != names.end() && in.name.empty())
        in.name = it->second;
    });
  if (!subst.empty()) {
    for_each_inst(g.body, [&](Inst& in) {
      for (Id& a : in.args)
        if (auto it = subst.find(a); it != subst.end()) a = it->second;
      for (CallArg& a : in.call_args)
        if (auto it = subst.find(a.value); a.kind == CallArg::Kind::Value && it != subst.end()) a.value = it->second;
    });
  }
  return g;
}

}  // namespace mtile::passes
