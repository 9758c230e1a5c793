#include "backends/cpu/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "ir/eval.hpp"

namespace mtile::cpu {
namespace {

using namespace ir;
using Mask = std::vector<uint8_t>;

constexpr uint32_t kSimdWidth = 32;

// Executes one threadgroup at a time; one instance per host thread.
class Threadgroup {
 public:
  Threadgroup(const Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
              const std::vector<uint32_t>& constexprs)
      : f_(f),
        g_(g),
        tensors_(tensors),
        constexprs_(constexprs),
        n_(g.tpg),
        regs_(static_cast<size_t>(f.next_id) * g.tpg) {}

  void run(uint64_t linear) {
    group_[0] = static_cast<uint32_t>(linear % g_.grid[0]);
    group_[1] = static_cast<uint32_t>(linear / g_.grid[0] % g_.grid[1]);
    group_[2] = static_cast<uint32_t>(linear / (uint64_t(g_.grid[0]) * g_.grid[1]));
    arrays_.clear();
    Mask all(n_, 1);
    block(f_.body, all);
  }

 private:
  Scalar* reg(Id id) { return &regs_[static_cast<size_t>(id) * n_]; }

  [[noreturn]] void fault(const Inst& in, uint32_t thread, const std::string& what) const {
    std::string loc = in.loc.str();
    throw Error(fmt::format("kernel {}<{}>: {} (threadgroup ({},{},{}), thread {}, at '{}'{}{})", f_.name,
                            type_name(f_.dtype), what, group_[0], group_[1], group_[2], thread, op_name(in.op),
                            loc.empty() ? "" : " from ", loc));
  }

  void block(const Block& b, const Mask& m) {
    for (const Inst& in : b.insts) inst(in, m);
  }

  template <class F>
  void each(const Mask& m, F&& fn) {
    for (uint32_t t = 0; t < n_; ++t)
      if (m[t]) fn(t);
  }

  void inst(const Inst& in, const Mask& m) {
    Scalar* r = in.result != kNoId ? reg(in.result) : nullptr;
    auto arg = [&](size_t k) { return reg(in.args[k]); };
    switch (in.op) {
      case Op::Const: {
        Scalar c = scalar_from_bits(in.type, in.bits);
        each(m, [&](uint32_t t) { r[t] = c; });
        return;
      }
      case Op::ConstexprRef: each(m, [&](uint32_t t) { r[t].u = constexprs_.at(in.param); }); return;
      case Op::ProgramId: each(m, [&](uint32_t t) { r[t].u = group_[in.bits]; }); return;
      case Op::GridSize: each(m, [&](uint32_t t) { r[t].u = g_.grid[in.bits]; }); return;
      case Op::ThreadId: each(m, [&](uint32_t t) { r[t].u = t; }); return;
      case Op::ThreadgroupSize: each(m, [&](uint32_t t) { r[t].u = n_; }); return;
      case Op::SimdLane: each(m, [&](uint32_t t) { r[t].u = t % kSimdWidth; }); return;
      case Op::SimdGroup: each(m, [&](uint32_t t) { r[t].u = t / kSimdWidth; }); return;
      case Op::Select: {
        Scalar *c = arg(0), *a = arg(1), *b = arg(2);
        each(m, [&](uint32_t t) { r[t] = c[t].u ? a[t] : b[t]; });
        return;
      }
      case Op::Fma: {
        Scalar *a = arg(0), *b = arg(1), *c = arg(2);
        each(m, [&](uint32_t t) { r[t] = eval_fma(in.type, a[t], b[t], c[t]); });
        return;
      }
      case Op::Load: load(in, m, r); return;
      case Op::Store: store(in, m); return;
      case Op::LoadVector: load_vector(in, m); return;
      case Op::StoreVector: store_vector(in, m); return;
      case Op::Extract: {
        const VectorReg& v = vectors_.at(in.args[0]);
        const uint32_t lane = static_cast<uint32_t>(in.bits), lanes = v.lanes;
        each(m, [&](uint32_t t) { r[t] = v.values[t * lanes + lane]; });
        return;
      }
      case Op::LocalDecl: {
        Scalar* a = arg(0);
        each(m, [&](uint32_t t) { r[t] = a[t]; });
        return;
      }
      case Op::LocalGet: {
        Scalar* l = reg(in.param);
        each(m, [&](uint32_t t) { r[t] = l[t]; });
        return;
      }
      case Op::LocalSet: {
        Scalar *l = reg(in.param), *a = arg(0);
        each(m, [&](uint32_t t) { l[t] = a[t]; });
        return;
      }
      case Op::TgArrayDecl: {
        // Poisoned (NaN for floats) so a read before any write shows up in results.
        std::vector<uint8_t>& a = arrays_[in.result];
        a.assign(in.bits * storage_bytes(in.type), 0xff);
        return;
      }
      case Op::Barrier: {
        uint32_t active = static_cast<uint32_t>(std::count(m.begin(), m.end(), 1));
        if (active != n_) {
          uint32_t missing = static_cast<uint32_t>(std::find(m.begin(), m.end(), 0) - m.begin());
          fault(in, missing,
                fmt::format("barrier reached by {} of {} threads: a barrier must be reached by every thread "
                            "of the threadgroup (it is inside divergent control flow)",
                            active, n_));
        }
        return;
      }
      case Op::SimdSum:
      case Op::SimdMax:
      case Op::SimdMin:
      case Op::ShuffleXor:
      case Op::ShuffleDown: simd(in, m, r); return;
      case Op::If: {
        Scalar* c = arg(0);
        Mask then_m(n_, 0), else_m(n_, 0);
        bool any_then = false, any_else = false;
        each(m, [&](uint32_t t) {
          (c[t].u ? then_m : else_m)[t] = 1;
          (c[t].u ? any_then : any_else) = true;
        });
        if (any_then) block(in.blocks[0], then_m);
        if (any_else) block(in.blocks[1], else_m);
        return;
      }
      case Op::For: loop(in, m); return;
      case Op::Call:
      case Op::TgReduceSum:
      case Op::TgReduceMax:
      case Op::TgReduceMin:
        throw Error(fmt::format("CPU engine: kernel {} still has '{}': run passes::run_pipeline first", f_.name,
                                op_name(in.op)));
      default: break;
    }
    if (is_unary(in.op)) {
      Scalar* a = arg(0);
      ScalarType from = f_type(in.args[0]);
      each(m, [&](uint32_t t) { r[t] = eval_unary(in.op, from, in.type, a[t]); });
      return;
    }
    if (is_binary(in.op)) {
      Scalar *a = arg(0), *b = arg(1);
      ScalarType ty = f_type(in.args[0]);
      each(m, [&](uint32_t t) {
        try {
          r[t] = eval_binary(in.op, ty, a[t], b[t]);
        } catch (const Error& e) {
          fault(in, t, e.what());
        }
      });
      return;
    }
    fault(in, 0, "unknown instruction");
  }

  ScalarType f_type(Id id) {
    if (types_.empty()) {
      types_.assign(f_.next_id, ScalarType::u32);
      for_each_inst(f_.body, [&](const Inst& i) {
        if (i.result != kNoId) types_[i.result] = i.op == Op::For ? ScalarType::u32 : i.type;
      });
    }
    return types_[id];
  }

  // The memory a load/store reaches. Its name is only formatted for a fault (a hot path).
  struct Target {
    void* base;
    uint64_t count;
  };
  Target target(const Inst& in) {
    if (in.space == MemSpace::Threadgroup) {
      std::vector<uint8_t>& a = arrays_.at(in.param);
      return {a.data(), a.size() / storage_bytes(in.type)};
    }
    const TensorView& tv = tensors_.at(in.param);
    return {tv.data, tv.count};
  }
  std::string target_name(const Inst& in) const {
    if (in.space == MemSpace::Threadgroup) return fmt::format("threadgroup array %{}", in.param);
    return fmt::format("'{}'", f_.params[in.param].name);
  }

  void load(const Inst& in, const Mask& m, Scalar* r) {
    const Target mem = target(in);
    Scalar* idx = reg(in.args[0]);
    each(m, [&](uint32_t t) {
      if (idx[t].u >= mem.count)
        fault(
            in, t,
            fmt::format("load of {} at index {} is out of bounds ({} elements)", target_name(in), idx[t].u, mem.count));
      r[t] = load_element(in.type, mem.base, idx[t].u);
    });
  }

  void store(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    Scalar *idx = reg(in.args[0]), *v = reg(in.args[1]);
    each(m, [&](uint32_t t) {
      if (idx[t].u >= mem.count)
        fault(in, t,
              fmt::format("store to {} at index {} is out of bounds ({} elements)", target_name(in), idx[t].u,
                          mem.count));
      store_element(in.type, mem.base, idx[t].u, v[t]);
    });
  }

  // A vector access's range: in bounds and aligned to its lanes (docs/IR.md), else a fault.
  void check_vector(const Inst& in, uint32_t t, uint32_t index, uint64_t count) const {
    const char* what = in.op == Op::LoadVector ? "vector load of" : "vector store to";
    if (index % in.lanes != 0)
      fault(in, t,
            fmt::format("{} {} at index {} is not a multiple of its {} lanes (misaligned)", what, target_name(in),
                        index, in.lanes));
    if (uint64_t{index} + in.lanes > count)
      fault(in, t,
            fmt::format("{} {} at indices {}..{} is out of bounds ({} elements)", what, target_name(in), index,
                        uint64_t{index} + in.lanes - 1, count));
  }

  void load_vector(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    const uint32_t lanes = in.lanes;
    VectorReg& v = vectors_[in.result];
    v.lanes = lanes;
    v.values.resize(size_t{n_} * lanes);
    Scalar* idx = reg(in.args[0]);
    each(m, [&](uint32_t t) {
      check_vector(in, t, idx[t].u, mem.count);
      for (uint32_t l = 0; l < lanes; ++l) v.values[t * lanes + l] = load_element(in.type, mem.base, idx[t].u + l);
    });
  }

  void store_vector(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    Scalar* idx = reg(in.args[0]);
    each(m, [&](uint32_t t) {
      check_vector(in, t, idx[t].u, mem.count);
      for (uint32_t l = 0; l < in.lanes; ++l) store_element(in.type, mem.base, idx[t].u + l, reg(in.args[1 + l])[t]);
    });
  }

  void simd(const Inst& in, const Mask& m, Scalar* r) {
    Scalar* v = reg(in.args[0]);
    Scalar* operand = in.args.size() > 1 ? reg(in.args[1]) : nullptr;
    Scalar cur[kSimdWidth], next[kSimdWidth];
    for (uint32_t base = 0; base < n_; base += kSimdWidth) {
      uint32_t active = 0;
      for (uint32_t l = 0; l < kSimdWidth && base + l < n_; ++l) active += m[base + l];
      if (active == 0) continue;
      if (active != kSimdWidth)
        fault(in, base,
              fmt::format("{} in simdgroup {} with {} of 32 lanes taking part: every lane must take part",
                          op_name(in.op), base / kSimdWidth, active));
      for (uint32_t l = 0; l < kSimdWidth; ++l) cur[l] = v[base + l];
      if (in.op == Op::ShuffleXor || in.op == Op::ShuffleDown) {
        for (uint32_t l = 0; l < kSimdWidth; ++l) {
          uint32_t k = operand[base + l].u;
          uint32_t src = in.op == Op::ShuffleXor ? l ^ (k & 31u) : (k < kSimdWidth - l ? l + k : l);
          r[base + l] = cur[src];
        }
        continue;
      }
      // The IR's definition: xor butterfly over masks 16, 8, 4, 2, 1.
      for (uint32_t mask = kSimdWidth / 2; mask > 0; mask /= 2) {
        for (uint32_t l = 0; l < kSimdWidth; ++l) next[l] = eval_reduce_step(in.op, in.type, cur[l], cur[l ^ mask]);
        std::copy(next, next + kSimdWidth, cur);
      }
      for (uint32_t l = 0; l < kSimdWidth; ++l) r[base + l] = cur[l];
    }
  }

  void loop(const Inst& in, const Mask& m) {
    Scalar *start = reg(in.args[0]), *end = reg(in.args[1]), *step = reg(in.args[2]);
    Scalar* iv = reg(in.result);
    each(m, [&](uint32_t t) {
      if (step[t].u == 0 && start[t].u < end[t].u) fault(in, t, "for_ loop with step 0 would never end");
      iv[t] = start[t];
    });
    Mask body_m(n_, 0);
    for (;;) {
      bool any = false;
      each(m, [&](uint32_t t) {
        body_m[t] = iv[t].u < end[t].u;
        any |= body_m[t] != 0;
      });
      if (!any) break;
      block(in.blocks[0], body_m);
      // A step that would pass the end ends the loop: the induction never wraps past 2^32.
      each(body_m, [&](uint32_t t) { iv[t].u = end[t].u - iv[t].u > step[t].u ? iv[t].u + step[t].u : end[t].u; });
      std::fill(body_m.begin(), body_m.end(), 0);
    }
  }

  const Function& f_;
  const Geometry& g_;
  const std::vector<TensorView>& tensors_;
  const std::vector<uint32_t>& constexprs_;
  uint32_t n_;
  uint32_t group_[3] = {0, 0, 0};
  std::vector<Scalar> regs_;
  std::unordered_map<Id, std::vector<uint8_t>> arrays_;
  // LoadVector results: `lanes` values per thread, thread t's at [t * lanes, (t + 1) * lanes).
  struct VectorReg {
    uint32_t lanes = 1;
    std::vector<Scalar> values;
  };
  std::unordered_map<Id, VectorReg> vectors_;
  std::vector<ScalarType> types_;
};

}  // namespace

void execute(const ir::Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
             const std::vector<uint32_t>& constexprs, const EngineOptions& opts) {
  if (tensors.size() != f.params.size() || constexprs.size() != f.params.size())
    throw Error(fmt::format("CPU engine: kernel {} takes {} parameters, got {} tensors and {} constexprs", f.name,
                            f.params.size(), tensors.size(), constexprs.size()));
  if (g.tpg == 0) throw Error(fmt::format("CPU engine: kernel {}: zero threads per threadgroup", f.name));
  uint64_t total = g.threadgroups();
  unsigned workers = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  workers = static_cast<unsigned>(std::min<uint64_t>(workers, total));
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  uint64_t failed_at = UINT64_MAX;
  std::exception_ptr failure;
  auto work = [&] {
    Threadgroup tg(f, g, tensors, constexprs);
    for (uint64_t i; (i = next++) < total;) {
      try {
        tg.run(i);
      } catch (...) {
        // Report the lowest failing threadgroup, so the error does not depend on scheduling.
        std::lock_guard<std::mutex> lock(mu);
        if (i < failed_at) {
          failed_at = i;
          failure = std::current_exception();
        }
        next = total;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace mtile::cpu
