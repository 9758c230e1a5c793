// check_uniformity: barriers need every thread of the threadgroup, simdgroup operations every lane
// of the simdgroup. Both are errors when control flow that depends on something that differs
// between threads (thread_id, a value loaded through it, a loop bound made of it, a thread that
// returned or broke out early) can keep some threads from reaching them.
//
// Each value gets a level: Group (the same in every thread of the threadgroup), Simd (the same
// within each simdgroup) or Thread (may differ between any two threads). Control flow has the
// level of what it depends on. Locals take the lowest level of all their assignments, so the
// analysis repeats until no local's level falls (loops carry values from one iteration to the
// next). A value loaded from memory at a uniform index is taken to be uniform.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "mtile/ir.hpp"

namespace mtile::ir {
namespace {

enum class Level : uint8_t { Thread = 0, Simd = 1, Group = 2 };

// The control flow an instruction is in: its level, and what made it so.
struct Context {
  Level level = Level::Group;
  std::string why;
};

Context narrow(const Context& c, Level l, const Inst& in, const char* what) {
  if (l >= c.level) return c;
  std::string loc = in.loc.str();
  return {l, fmt::format("{}{}", what, loc.empty() ? "" : " at " + loc)};
}

// What an instruction needs of the control flow around it. Committing and waiting for async
// copies are per thread (each thread waits for its own copies), though they sit with the barrier.
Level needs(const Inst& in) {
  if (in.op == Op::Fence) return Level::Thread;  // orders only its own thread's accesses
  if (in.op == Op::CopyAsyncCommit || in.op == Op::CopyAsyncWait) return Level::Thread;
  if (is_mbarrier(in.op)) return Level::Thread;  // each thread arrives or waits on its own
  switch (op_kind(in.op)) {
    case OpKind::Sync:
    case OpKind::TgReduce: return Level::Group;
    case OpKind::Simd: return Level::Simd;
    default: return Level::Thread;
  }
}

class Analysis {
 public:
  Analysis(const Function& f, std::vector<Level> bound) : f_(f), bound_(std::move(bound)) {}

  // Runs to a fixed point and returns the first violation, or "" when there is none.
  std::string run() {
    for (int round = 0; round < 64; ++round) {
      changed_ = false;
      error_.clear();
      exited_ = Context{};
      output = Level::Group;
      block(f_.body, Context{});
      if (!changed_) break;
    }
    return error_;
  }

  // What a call of this function needs of the caller's control flow.
  Level required() const {
    Level need = Level::Thread;
    for_each_inst(f_.body, [&](const Inst& in) {
      need = std::max(need, needs(in));
      if (in.op == Op::Call) need = std::max(need, Analysis(*in.callee, {}).required());
    });
    return need;
  }

  Level output = Level::Group;  // the level of the value stored to the output (for calls)

 private:
  Level of(Id id) const {
    auto it = values_.find(id);
    return it == values_.end() ? Level::Group : it->second;
  }
  Level args(const Inst& in) const {
    Level l = Level::Group;
    for (Id a : in.args) l = std::min(l, of(a));
    return l;
  }
  void lower_local(Id id, Level l) {
    auto [it, inserted] = locals_.emplace(id, l);
    if (inserted || l < it->second) {
      it->second = std::min(it->second, l);
      changed_ = true;
    }
  }

  void require(const Inst& in, const Context& ctx, Level need, const std::string& what) {
    if (ctx.level >= need || !error_.empty()) return;
    std::string loc = in.loc.str();
    error_ = fmt::format(
        "kernel {}<{}>: {}{} is inside control flow that {} ({}): every {} must reach it together. Move it out of "
        "that control flow, or make its condition the same for all of them",
        f_.name, type_name(f_.dtype), what, loc.empty() ? "" : " at " + loc,
        ctx.level == Level::Thread ? "differs between threads" : "differs between simdgroups", ctx.why,
        need == Level::Group ? "thread of the threadgroup" : "lane of the simdgroup");
  }

  void block(const Block& b, const Context& outer) {
    for (const Inst& in : b.insts) {
      // Threads that returned stop reaching what follows.
      Context ctx = exited_.level < outer.level ? exited_ : outer;
      inst(in, ctx);
    }
  }

  void inst(const Inst& in, const Context& ctx) {
    if (needs(in) != Level::Thread) require(in, ctx, needs(in), op_name(in.op));
    switch (in.op) {
      case Op::ThreadId:
      case Op::SimdLane:
      case Op::Mma:  // each lane gets its own elements of D
      case Op::MmaAsync:
      case Op::MmaWait:
      case Op::LoadMatrix:  // and of the matrices
      case Op::Atomic: values_[in.result] = Level::Thread; return;
      case Op::SimdGroup: values_[in.result] = Level::Simd; return;
      case Op::ShuffleXor:
      case Op::ShuffleDown: values_[in.result] = of(in.args[0]) == Level::Group ? Level::Group : Level::Thread; return;
      case Op::SimdSum:
      case Op::SimdMax:
      case Op::SimdMin: values_[in.result] = std::max(of(in.args[0]), Level::Simd); return;
      case Op::TgReduceSum:
      case Op::TgReduceMax:
      case Op::TgReduceMin: values_[in.result] = Level::Group; return;
      case Op::LocalDecl: lower_local(in.result, std::min(args(in), ctx.level)); return;
      case Op::LocalSet: lower_local(in.param, std::min(args(in), ctx.level)); return;
      case Op::LocalGet: {
        auto it = locals_.find(in.param);
        values_[in.result] = it == locals_.end() ? Level::Group : it->second;
        return;
      }
      case Op::Store:
        if (in.space == MemSpace::Device && in.param == f_.output_param())
          output = std::min(output, std::min(of(in.args[1]), ctx.level));
        return;
      case Op::If: {
        Context c = narrow(ctx, of(in.args[0]), in, "an if_ whose condition differs between threads");
        block(in.blocks[0], c);
        block(in.blocks[1], c);
        return;
      }
      case Op::For: loop(in, narrow(ctx, args(in), in, "a for_ whose bounds differ between threads")); return;
      case Op::Loop: loop(in, ctx); return;
      case Op::Break:
      case Op::Continue:
        if (ctx.level < loop_exits_.level) loop_exits_ = ctx;
        return;
      case Op::Return:
        if (ctx.level < exited_.level)
          exited_ = narrow(exited_, ctx.level, in, "a return_ that only some threads take");
        return;
      case Op::Call: call(in, ctx); return;
      default: break;
    }
    if (in.result == kNoId) return;
    Level l = args(in);
    // A load of a callee's tensor parameter that its caller bound to a value has that value's level.
    if (in.op == Op::Load && in.space == MemSpace::Device && static_cast<size_t>(in.param) < bound_.size())
      l = std::min(l, bound_[in.param]);
    values_[in.result] = l;
  }

  void loop(const Inst& in, const Context& ctx) {
    // The body runs at the loop's level, lower where some threads leave an iteration early
    // (a break_ or continue_ in divergent code): it is run twice, the second time with that known.
    Context saved = loop_exits_;
    loop_exits_ = Context{};
    Context body = ctx;
    for (int pass = 0; pass < 2; ++pass) {
      block(in.blocks[0], body);
      if (loop_exits_.level < body.level)
        body = narrow(body, loop_exits_.level, in, "a loop that some threads leave early");
    }
    // Threads that broke out of a while_ at different times leave it at different times, and what
    // follows it sees the difference only through values; the loop itself is done.
    loop_exits_ = saved;
  }

  void call(const Inst& in, const Context& ctx) {
    // The callee's rules, with its parameters bound at the levels of the arguments.
    std::vector<Level> bound(in.callee->params.size(), Level::Group);
    int out = in.callee->output_param();
    size_t k = 0;
    for (size_t i = 0; i < bound.size(); ++i) {
      if (static_cast<int>(i) == out) continue;
      const CallArg& a = in.call_args.at(k++);
      if (a.kind == CallArg::Kind::Value) bound[i] = of(a.value);
    }
    Analysis callee(*in.callee, bound);
    std::string err = callee.run();
    if (!err.empty() && error_.empty()) error_ = fmt::format("{} (called from kernel {})", err, f_.name);
    if (Level need = callee.required(); need != Level::Thread)
      require(in, ctx, need, fmt::format("call of {} (which synchronizes)", in.callee->name));
    values_[in.result] = callee.output;
  }

  const Function& f_;
  std::vector<Level> bound_;
  std::unordered_map<Id, Level> values_, locals_;
  Context exited_;      // the lowest level at which threads have returned so far
  Context loop_exits_;  // the lowest level of a break_/continue_ in the loop being analysed
  bool changed_ = false;
  std::string error_;
};

}  // namespace

void check_uniformity(const Function& f) {
  std::string err = Analysis(f, {}).run();
  if (!err.empty()) throw Error(err);
}

}  // namespace mtile::ir
