#include "backends/cpu/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "ir/eval.hpp"
#include "ir/slots.hpp"
#include "mtile/mma_layout.hpp"

namespace mtile::cpu {
namespace {

using namespace ir;
using Mask = std::vector<uint8_t>;

// What the threadgroups of one launch share: with `sanitize`, which Out elements were written.
struct Launch {
  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> written;  // per parameter, Out tensors only
};

// Sanitizer state of one threadgroup array element (docs/reliability.md).
// Clocks order accesses within one epoch through mbarriers (Threadgroup::knows).
struct Shadow {
  int32_t writer = -1;  // thread of the last write
  uint32_t write_epoch = 0, write_clock = 0;
  int32_t readers[2] = {-1, -1};  // the first two threads that read it in read_epoch (since the last write)
  uint32_t read_clocks[2] = {0, 0};
  uint32_t read_epoch = 0;
  bool written = false;
  bool copying = false;    // the destination of a copy_async its thread has not waited for
  bool tile = false;       // ... or of a copy_tile whose mbarrier phase has not completed
  uint16_t mma_reads = 0;  // groups of mma_async in flight (not yet waited for) that read it
};

struct Array;

// One mbarrier (docs/IR.md "Mbarriers"). With the sanitizer, `arrived` joins the clocks of this
// phase's arrivals and `completed` holds those of the last completed phase, which a wait acquires.
struct Mbarrier {
  bool initialized = false;
  uint32_t count = 0, pending = 0;  // arrivals a phase takes, and still missing from this one
  int64_t bytes = 0;                // copy_tile bytes expected by this phase and not yet landed
  uint64_t phase = 0;               // phases completed
  std::vector<uint32_t> arrived, completed;
  struct Landing {  // a copy_tile's destination, pending until the phase completes (sanitizer)
    Array* array;
    std::vector<uint64_t> indices;
  };
  std::vector<Landing> landing;
};

struct Array {
  std::vector<uint8_t> bytes;
  ScalarType elem;
  uint64_t count;
  const Inst* decl;                // for its name in faults
  std::vector<Shadow> shadow;      // with `sanitize`
  std::vector<Mbarrier> barriers;  // an array of mbarriers (the verifier keeps other accesses out)
};

// Executes one threadgroup at a time; one instance per host thread.
class Threadgroup {
 public:
  Threadgroup(const Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
              const std::vector<uint64_t>& values, const EngineOptions& opts, Launch& launch)
      : f_(f),
        g_(g),
        tensors_(tensors),
        values_(values),
        opts_(opts),
        launch_(launch),
        n_(g.tpg),
        regs_(static_cast<size_t>(f.next_id) * g.tpg),
        types_(f.next_id, ScalarType::u32) {
    for_each_inst(f.body, [&](const Inst& i) {
      if (i.result != kNoId) types_[i.result] = i.op == Op::For ? ScalarType::u32 : i.type;
      uses_mbarriers_ |= is_mbarrier(i.op) || i.op == Op::CopyTile;
    });
  }

  void run(uint64_t linear) {
    group_[0] = static_cast<uint32_t>(linear % g_.grid[0]);
    group_[1] = static_cast<uint32_t>(linear / g_.grid[0] % g_.grid[1]);
    group_[2] = static_cast<uint32_t>(linear / (uint64_t(g_.grid[0]) * g_.grid[1]));
    arrays_.clear();
    pending_.assign(opts_.sanitize ? n_ : 0, {});
    committed_.assign(opts_.sanitize ? n_ : 0, 0);
    returned_.assign(n_, 0);
    loops_.clear();
    iterations_ = 0;
    epoch_ = 1;
    clocks_.clear();
    if (opts_.sanitize && uses_mbarriers_) {
      clocks_.assign(size_t{n_} * n_, 0);
      for (uint32_t t = 0; t < n_; ++t) clocks_[size_t{t} * n_ + t] = 1;
    }
    block(f_.body, Mask(n_, 1));
  }

 private:
  Scalar* reg(Id id) { return &regs_[static_cast<size_t>(id) * n_]; }
  ScalarType type_of(Id id) const { return types_[id]; }

  [[noreturn]] void fault(const Inst& in, uint32_t thread, const std::string& what) const {
    std::string loc = in.loc.str();
    throw Error(fmt::format("kernel {}<{}>: {} (threadgroup ({},{},{}), thread {}, at '{}'{}{})", f_.name,
                            type_name(f_.dtype), what, group_[0], group_[1], group_[2], thread, op_name(in.op),
                            loc.empty() ? "" : " from ", loc));
  }

  template <class F>
  void each(const Mask& m, F&& fn) {
    for (uint32_t t = 0; t < n_; ++t)
      if (m[t]) fn(t);
  }
  static bool any(const Mask& m) { return std::find(m.begin(), m.end(), 1) != m.end(); }

  // A thread stops running a block once it returned, or broke out of or continued the loop it is in.
  bool stopped(uint32_t t) const {
    if (returned_[t]) return true;
    return !loops_.empty() && (loops_.back().broken[t] || loops_.back().continued[t]);
  }

  void block(const Block& b, Mask m) {
    for (const Inst& in : b.insts) {
      if (!any(m)) return;
      inst(in, m);
      if (!in.blocks.empty() || op_kind(in.op) == OpKind::Control)
        for (uint32_t t = 0; t < n_; ++t) m[t] = m[t] && !stopped(t);
    }
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
      case Op::ConstexprRef:
      case Op::ScalarRef: {
        Scalar c = scalar_from_bits(in.type, values_.at(in.param));
        each(m, [&](uint32_t t) { r[t] = c; });
        return;
      }
      case Op::ProgramId: each(m, [&](uint32_t t) { r[t] = u32(group_[in.bits]); }); return;
      case Op::GridSize: each(m, [&](uint32_t t) { r[t] = u32(g_.grid[in.bits]); }); return;
      case Op::ThreadId: each(m, [&](uint32_t t) { r[t] = u32(t); }); return;
      case Op::ThreadgroupSize: each(m, [&](uint32_t t) { r[t] = u32(n_); }); return;
      case Op::SimdLane: each(m, [&](uint32_t t) { r[t] = u32(t % kSimdWidth); }); return;
      case Op::SimdGroup: each(m, [&](uint32_t t) { r[t] = u32(t / kSimdWidth); }); return;
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
      case Op::Atomic: atomic(in, m, r); return;
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
        Array& a = arrays_[in.result];
        a.elem = in.type;
        a.count = in.bits;
        a.decl = &in;
        a.bytes.assign(in.bits * storage_bytes(in.type), 0xff);
        if (opts_.sanitize) a.shadow.assign(in.bits, Shadow{});
        return;
      }
      case Op::Barrier: {
        uint32_t active = static_cast<uint32_t>(std::count(m.begin(), m.end(), 1));
        if (active != n_) {
          uint32_t missing = static_cast<uint32_t>(std::find(m.begin(), m.end(), 0) - m.begin());
          fault(in, missing,
                fmt::format("barrier reached by {} of {} threads: a barrier must be reached by every thread "
                            "of the threadgroup (it is inside divergent control flow, or threads returned)",
                            active, n_));
        }
        ++epoch_;
        return;
      }
      // A threadgroup's threads run on one host thread and device atomics are sequentially
      // consistent host atomics (atomic() below), so every access a fence orders on a GPU is
      // already ordered here: the host's atomics make a threadgroup's stores before its atomic
      // visible to the threadgroup whose atomic reads that one's result. The same holds at system
      // scope: simulated ranks are host threads of this process sharing the symmetric memory.
      case Op::Fence: return;
      case Op::SimdSum:
      case Op::SimdMax:
      case Op::SimdMin:
      case Op::ShuffleXor:
      case Op::ShuffleDown: simd(in, m, r); return;
      case Op::Mma: mma(in, m); return;
      case Op::MmaAsync: mma_async(in, m); return;
      case Op::MmaFence:  // mma_async reads its operands when issued, after every earlier write here
        for (uint32_t base = 0; base < n_; base += kSimdWidth) whole_simdgroup(in, m, base);
        return;
      case Op::MmaWait: mma_wait(in, m); return;
      case Op::LoadMatrix: load_matrix(in, m); return;
      case Op::CopyAsync: copy_async(in, m); return;
      case Op::CopyTile: each(m, [&](uint32_t t) { copy_tile(in, t); }); return;
      case Op::CopyAsyncCommit:
        if (opts_.sanitize) each(m, [&](uint32_t t) { commit_copies(t); });
        return;
      case Op::CopyAsyncWait:
        if (opts_.sanitize) each(m, [&](uint32_t t) { wait_copies(t, in.bits); });
        return;
      case Op::MbarrierInit: each(m, [&](uint32_t t) { mbarrier_init(in, t); }); return;
      case Op::MbarrierArrive: each(m, [&](uint32_t t) { mbarrier_arrive(in, t); }); return;
      case Op::MbarrierWait: each(m, [&](uint32_t t) { mbarrier_wait(in, t); }); return;
      case Op::If: {
        Scalar* c = arg(0);
        Mask then_m(n_, 0), else_m(n_, 0);
        each(m, [&](uint32_t t) { (c[t].u ? then_m : else_m)[t] = 1; });
        if (any(then_m)) block(in.blocks[0], then_m);
        if (any(else_m)) block(in.blocks[1], else_m);
        return;
      }
      case Op::For:
      case Op::Loop: loop(in, m); return;
      case Op::Break: each(m, [&](uint32_t t) { loops_.back().broken[t] = 1; }); return;
      case Op::Continue: each(m, [&](uint32_t t) { loops_.back().continued[t] = 1; }); return;
      case Op::Return: each(m, [&](uint32_t t) { returned_[t] = 1; }); return;
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
      ScalarType from = type_of(in.args[0]);
      each(m, [&](uint32_t t) { r[t] = eval_unary(in.op, from, in.type, a[t]); });
      return;
    }
    if (is_binary(in.op)) {
      Scalar *a = arg(0), *b = arg(1);
      ScalarType ty = type_of(in.args[0]);
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

  static Scalar u32(uint32_t v) {
    Scalar s;
    s.u64 = v;
    return s;
  }

  // The memory a load, store or atomic reaches. Its name is only formatted for a fault (a hot path).
  struct Target {
    void* base;
    ScalarType elem;
    uint64_t count;
    Array* array;                   // threadgroup memory
    std::atomic<uint8_t>* written;  // an Out tensor under the sanitizer
  };
  Target target(const Inst& in) {
    if (in.space == MemSpace::Threadgroup) {
      Array& a = arrays_.at(in.param);
      return {a.bytes.data(), a.elem, a.count, &a, nullptr};
    }
    const TensorView& tv = tensors_.at(in.param);
    auto& w = launch_.written[in.param];
    return {tv.data, tv.elem, tv.count, nullptr, w ? w.get() : nullptr};
  }
  std::string target_name(const Inst& in) const {
    if (in.space == MemSpace::Device) return fmt::format("'{}'", f_.params[in.param].name);
    const Inst& decl = *arrays_.at(in.param).decl;
    std::string loc = decl.loc.str();
    return fmt::format("threadgroup array %{} ({}[{}]{}{})", in.param, type_name(decl.type), decl.bits,
                       loc.empty() ? "" : ", declared at ", loc);
  }
  uint64_t index(const Inst& in, uint32_t t) { return index_value(type_of(in.args[0]), reg(in.args[0])[t]); }

  void check_bounds(const Inst& in, uint32_t t, uint64_t i, const Target& mem, const char* what) const {
    if (i >= mem.count)
      fault(in, t,
            fmt::format("{} {} at index {} is out of bounds ({} elements)", what, target_name(in), i, mem.count));
  }

  // The sanitizer's view of one access (docs/reliability.md): races between barriers and reads of
  // memory no thread wrote in threadgroup arrays, and reads of Out tensors before they are written.
  void sanitize_read(const Inst& in, uint32_t t, uint64_t i, const Target& mem) {
    if (mem.written && !mem.written[i].load(std::memory_order_relaxed))
      fault(in, t,
            fmt::format("read of {} at index {} before anything wrote it (an Out tensor holds nothing yet)",
                        target_name(in), i));
    if (!mem.array || mem.array->shadow.empty()) return;
    Shadow& s = mem.array->shadow[i];
    if (s.copying) fault(in, t, pending_copy(in, i, s, "read of"));
    if (!s.written) fault(in, t, fmt::format("read of {} at index {}, which no thread wrote", target_name(in), i));
    if (s.write_epoch == epoch_ && s.writer != static_cast<int32_t>(t) && !knows(t, s.writer, s.write_clock))
      fault(in, t,
            fmt::format("race on {} at index {}: thread {} wrote it and thread {} reads it with no barrier "
                        "between{}",
                        target_name(in), i, s.writer, t, clocks_.empty() ? "" : " (nor an mbarrier that orders them)"));
    const int32_t me = static_cast<int32_t>(t);
    if (s.read_epoch != epoch_) {
      s.read_epoch = epoch_;
      s.readers[0] = me;
      s.readers[1] = -1;
      s.read_clocks[0] = clock(t);
    } else {
      for (int k = 0; k < 2; ++k)
        if (s.readers[k] == me || s.readers[k] < 0) {
          s.readers[k] = me;
          s.read_clocks[k] = clock(t);
          break;
        }
    }
  }
  void sanitize_write(const Inst& in, uint32_t t, uint64_t i, const Target& mem) {
    if (mem.written) mem.written[i].store(1, std::memory_order_relaxed);
    if (!mem.array || mem.array->shadow.empty()) return;
    Shadow& s = mem.array->shadow[i];
    if (s.copying) fault(in, t, pending_copy(in, i, s, "write to"));
    if (s.mma_reads)
      fault(in, t,
            fmt::format("write to {} at index {}, which an mma_async still reads: its warpgroup must mma_wait for "
                        "it first (and a barrier must follow where another warpgroup writes)",
                        target_name(in), i));
    int32_t me = static_cast<int32_t>(t);
    const char* nor = clocks_.empty() ? "" : " (nor an mbarrier that orders them)";
    if (s.write_epoch == epoch_ && s.writer != me && !knows(t, s.writer, s.write_clock))
      fault(in, t,
            fmt::format("race on {} at index {}: threads {} and {} both write it with no barrier between{}",
                        target_name(in), i, s.writer, t, nor));
    // Another thread's read in this epoch (of the first two readers since the last write).
    for (int k = 0; k < 2 && s.read_epoch == epoch_; ++k)
      if (s.readers[k] >= 0 && s.readers[k] != me && !knows(t, s.readers[k], s.read_clocks[k]))
        fault(in, t,
              fmt::format("race on {} at index {}: thread {} reads it and thread {} writes it with no barrier "
                          "between{}",
                          target_name(in), i, s.readers[k], t, nor));
    // Those reads are ordered before this write, so a later write ordered after it follows them too.
    s.readers[0] = s.readers[1] = -1;
    s.writer = me;
    s.write_epoch = epoch_;
    s.write_clock = clock(t);
    s.written = true;
  }

  // Vector clocks over mbarriers (with the sanitizer, in kernels that use them): row t of clocks_
  // is what thread t has acquired of each thread's clock; its own entry counts its arrivals. An
  // arrival publishes the row to the barrier's phase and a wait that sees the phase complete joins
  // it, so an access of thread u at clock c is ordered before thread t's when t knows c of u.
  uint32_t clock(uint32_t t) const { return clocks_.empty() ? 0 : clocks_[size_t{t} * n_ + t]; }
  bool knows(uint32_t t, int32_t u, uint32_t c) const {
    return !clocks_.empty() && clocks_[size_t{t} * n_ + static_cast<uint32_t>(u)] >= c;
  }
  void join(std::vector<uint32_t>& into, const uint32_t* from) const {
    if (into.empty()) into.assign(n_, 0);
    for (uint32_t u = 0; u < n_; ++u) into[u] = std::max(into[u], from[u]);
  }

  // The barrier an mbarrier op names, checked; with the sanitizer its access is a write (init) or
  // a read (arrive, wait) of the element, so a barrier must separate initialization from use.
  Mbarrier& mbarrier(const Inst& in, uint32_t t) {
    const bool tile = in.op == Op::CopyTile;  // its barrier is element args[2] of array args[1]
    Array& a = arrays_.at(tile ? in.args[1] : in.param);
    const uint64_t i = tile ? reg(in.args[2])[t].u : index(in, t);
    auto name = [&] { return tile ? fmt::format("mbarrier array %{}", in.args[1]) : target_name(in); };  // faults only
    if (i >= a.count) fault(in, t, fmt::format("mbarrier {} of {} is out of bounds ({} elements)", i, name(), a.count));
    if (a.barriers.empty()) a.barriers.resize(a.count);
    Mbarrier& b = a.barriers[i];
    if (in.op != Op::MbarrierInit && !b.initialized)
      fault(in, t,
            fmt::format("{} on mbarrier {} of {}, which no thread initialized (mbarrier_init by one thread, then a "
                        "barrier)",
                        op_name(in.op), i, name()));
    if (opts_.sanitize && !tile) {
      const Target mem = target(in);
      if (in.op == Op::MbarrierInit)
        sanitize_write(in, t, i, mem);
      else
        sanitize_read(in, t, i, mem);
    }
    return b;
  }
  void mbarrier_init(const Inst& in, uint32_t t) {
    Mbarrier& b = mbarrier(in, t);
    const uint32_t count = reg(in.args[1])[t].u;
    if (count == 0 || count >= (1u << 20))
      fault(in, t, fmt::format("mbarrier_init with count {} (1 to 2^20 - 1 arrivals a phase)", count));
    if (b.initialized && b.pending != b.count)
      fault(in, t,
            fmt::format("mbarrier_init of mbarrier {} of {} while {} of its {} arrivals are still missing from a phase",
                        index(in, t), target_name(in), b.pending, b.count));
    b = Mbarrier{true, count, count, 0, 0, {}, {}, {}};
  }
  // Every arrival in and more copy_tile bytes landed than they announced: on a GPU the phase never
  // completes (or the next one is corrupted).
  void over_landed(const Inst& in, uint32_t t, const Mbarrier& b) {
    if (b.pending == 0 && b.bytes < 0)
      fault(in, t,
            fmt::format("a phase of an mbarrier got every arrival but {} bytes of copy_tile more than its "
                        "arrive_expect calls announced",
                        -b.bytes));
  }
  // A phase completes once every arrival and every expected copy_tile byte is in: what its copies
  // wrote is then there for whoever waits on it.
  void complete_phase(Mbarrier& b) {
    if (b.pending != 0 || b.bytes != 0) return;
    ++b.phase;
    b.pending = b.count;
    b.completed = std::move(b.arrived);
    b.arrived.clear();
    for (Mbarrier::Landing& l : b.landing)
      for (uint64_t i : l.indices) l.array->shadow[i].copying = false;
    b.landing.clear();
  }
  void mbarrier_arrive(const Inst& in, uint32_t t) {
    Mbarrier& b = mbarrier(in, t);
    if (in.bits && opts_.sanitize) {  // after this thread's copies: they are complete
      for (PendingCopy& c : pending_[t])
        for (uint32_t l = 0; l < c.lanes; ++l) c.array->shadow[c.index + l].copying = false;
      pending_[t].clear();
    }
    if (!clocks_.empty()) {
      join(b.arrived, &clocks_[size_t{t} * n_]);
      ++clocks_[size_t{t} * n_ + t];  // this thread's later accesses are not covered by the arrival
    }
    if (b.pending == 0)
      fault(in, t,
            fmt::format("mbarrier_arrive on mbarrier {} of {}, whose phase has all its {} arrivals and waits for {} "
                        "bytes of copy_tile: one arrival too many",
                        index(in, t), target_name(in), b.count, b.bytes));
    if (in.bits == kArriveExpectBytes) b.bytes += reg(in.args[1])[t].u;
    --b.pending;
    over_landed(in, t, b);
    complete_phase(b);
  }
  void mbarrier_wait(const Inst& in, uint32_t t) {
    Mbarrier& b = mbarrier(in, t);
    const uint32_t parity = reg(in.args[1])[t].u;
    if (parity > 1) fault(in, t, fmt::format("mbarrier_wait for parity {} (0 or 1)", parity));
    // Complete when the current phase's parity differs: the phase of that parity came before it.
    if ((b.phase & 1) == parity)
      fault(in, t,
            fmt::format("mbarrier_wait on mbarrier {} of {} for the phase of parity {}, which has not completed ({} "
                        "of {} arrivals missing, {} phases completed): the CPU engine runs a threadgroup's threads "
                        "in lockstep, so the arrivals a wait needs must come before it in program order, or it would "
                        "wait forever (docs/IR.md \"Mbarriers\")",
                        index(in, t), target_name(in), parity, b.pending, b.count, b.phase));
    if (b.phase > 0 && !clocks_.empty() && !b.completed.empty()) {
      std::vector<uint32_t> row(clocks_.begin() + size_t{t} * n_, clocks_.begin() + size_t{t + 1} * n_);
      join(row, b.completed.data());
      std::copy(row.begin(), row.end(), clocks_.begin() + size_t{t} * n_);
    }
  }

  std::string pending_copy(const Inst& in, uint64_t i, const Shadow& s, const char* what) const {
    return fmt::format(
        fmt::runtime(
            s.tile
                ? "{} {} at index {}, which a copy_tile of thread {} is still writing: wait on its mbarrier's phase, "
                  "which completes once its bytes land (docs/IR.md \"Tile copies\")"
                : "{} {} at index {}, which a copy_async of thread {} is still writing: that thread must "
                  "copy_async_commit and copy_async_wait for it (and a barrier must follow where other threads read "
                  "it)"),
        what, target_name(in), i, s.writer);
  }

  void load(const Inst& in, const Mask& m, Scalar* r) {
    const Target mem = target(in);
    bool masked = in.args.size() == 3;
    Scalar *mask = masked ? reg(in.args[1]) : nullptr, *other = masked ? reg(in.args[2]) : nullptr;
    each(m, [&](uint32_t t) {
      if (masked && !mask[t].u) {  // touches no memory
        r[t] = other[t];
        return;
      }
      uint64_t i = index(in, t);
      check_bounds(in, t, i, mem, "load of");
      if (opts_.sanitize) sanitize_read(in, t, i, mem);
      r[t] = load_element(mem.elem, mem.base, i);
    });
  }

  void store(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    Scalar* v = reg(in.args[1]);
    Scalar* mask = in.args.size() == 3 ? reg(in.args[2]) : nullptr;
    each(m, [&](uint32_t t) {
      if (mask && !mask[t].u) return;
      uint64_t i = index(in, t);
      check_bounds(in, t, i, mem, "store to");
      if (opts_.sanitize) sanitize_write(in, t, i, mem);
      store_element(mem.elem, mem.base, i, v[t]);
    });
  }

  // Atomics: threads of one threadgroup in thread order; threadgroups on other host threads through
  // the hardware's atomics (docs/IR.md).
  void atomic(const Inst& in, const Mask& m, Scalar* r) {
    const Target mem = target(in);
    auto op = static_cast<AtomicOp>(in.bits);
    Scalar* v = reg(in.args[1]);
    Scalar* cmp = op == AtomicOp::CompareExchange ? reg(in.args[2]) : nullptr;
    each(m, [&](uint32_t t) {
      uint64_t i = index(in, t);
      check_bounds(in, t, i, mem, "atomic on");
      if (mem.written) mem.written[i].store(1, std::memory_order_relaxed);
      if (mem.array && !mem.array->shadow.empty()) {
        Shadow& s = mem.array->shadow[i];
        if (!s.written)
          fault(in, t, fmt::format("atomic on {} at index {}, which no thread wrote", target_name(in), i));
      }
      std::atomic_ref<uint32_t> cell(static_cast<uint32_t*>(mem.base)[i]);
      uint32_t old = cell.load();
      for (;;) {
        Scalar o = u32(old), n = o;
        switch (op) {
          case AtomicOp::Add: n = eval_binary(Op::Add, in.type, o, v[t]); break;
          case AtomicOp::Min: n = eval_binary(Op::Min, in.type, o, v[t]); break;
          case AtomicOp::Max: n = eval_binary(Op::Max, in.type, o, v[t]); break;
          case AtomicOp::Exchange: n = v[t]; break;
          case AtomicOp::CompareExchange: n = old == cmp[t].u ? v[t] : o; break;
        }
        if (cell.compare_exchange_weak(old, n.u)) break;
      }
      r[t] = u32(old);
      // A compare_exchange that finds another value is how a thread waits for a flag another
      // threadgroup or rank sets: give that host thread the core (2 cores may run 4 ranks).
      if (op == AtomicOp::CompareExchange && old != cmp[t].u) std::this_thread::yield();
    });
  }

  // A vector access's range: in bounds and aligned to its lanes (docs/IR.md), else a fault.
  void check_vector(const Inst& in, uint32_t t, uint64_t i, uint64_t count) const {
    const char* what = in.op == Op::LoadVector ? "vector load of" : "vector store to";
    if (i % in.lanes != 0)
      fault(in, t,
            fmt::format("{} {} at index {} is not a multiple of its {} lanes (misaligned)", what, target_name(in), i,
                        in.lanes));
    if (i + in.lanes > count)
      fault(in, t,
            fmt::format("{} {} at indices {}..{} is out of bounds ({} elements)", what, target_name(in), i,
                        i + in.lanes - 1, count));
  }

  void load_vector(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    const uint32_t lanes = in.lanes;
    VectorReg& v = vectors_[in.result];
    v.lanes = lanes;
    v.values.resize(size_t{n_} * lanes);
    each(m, [&](uint32_t t) {
      uint64_t i = index(in, t);
      check_vector(in, t, i, mem.count);
      for (uint32_t l = 0; l < lanes; ++l) {
        if (opts_.sanitize) sanitize_read(in, t, i + l, mem);
        v.values[t * lanes + l] = load_element(mem.elem, mem.base, i + l);
      }
    });
  }

  void store_vector(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    each(m, [&](uint32_t t) {
      uint64_t i = index(in, t);
      check_vector(in, t, i, mem.count);
      for (uint32_t l = 0; l < in.lanes; ++l) {
        if (opts_.sanitize) sanitize_write(in, t, i + l, mem);
        store_element(mem.elem, mem.base, i + l, reg(in.args[1 + l])[t]);
      }
    });
  }

  // Whether the simdgroup of lanes base .. base + 31 runs a simdgroup operation: false where none of
  // its lanes does, a fault where only some do (docs/IR.md: every lane must take part).
  bool whole_simdgroup(const Inst& in, const Mask& m, uint32_t base) const {
    uint32_t active = 0;
    for (uint32_t l = 0; l < kSimdWidth && base + l < n_; ++l) active += m[base + l];
    if (active == 0) return false;
    if (active != kSimdWidth) {
      std::string why = base + kSimdWidth > n_ ? fmt::format(
                                                     " (the threadgroup of {} threads is not a whole number of "
                                                     "32-lane simdgroups)",
                                                     n_)
                                               : "";
      fault(in, base,
            fmt::format("{} in simdgroup {} with {} of 32 lanes taking part: every lane must take part{}",
                        op_name(in.op), base / kSimdWidth, active, why));
    }
    return true;
  }

  void simd(const Inst& in, const Mask& m, Scalar* r) {
    Scalar* v = reg(in.args[0]);
    Scalar* operand = in.args.size() > 1 ? reg(in.args[1]) : nullptr;
    Scalar cur[kSimdWidth], next[kSimdWidth];
    for (uint32_t base = 0; base < n_; base += kSimdWidth) {
      if (!whole_simdgroup(in, m, base)) continue;
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

  // Mma (docs/IR.md): each simdgroup's 32 lanes together hold A (16 x 16), B (16 x 8) and C (16 x 8)
  // in the m16n8k16 layout (mtile/mma_layout.hpp); every D element is C + the sum over k of A B,
  // the products exact and the sum formed in f64 in order of k, rounded once to f32.
  void mma(const Inst& in, const Mask& m) {
    namespace L = mma_layout;
    VectorReg& d = vectors_[in.result];
    d.lanes = 4;
    d.values.resize(size_t{n_} * 4);
    const Scalar* args[16];
    for (size_t k = 0; k < 16; ++k) args[k] = reg(in.args[k]);
    for (uint32_t base = 0; base < n_; base += kSimdWidth) {
      if (!whole_simdgroup(in, m, base)) continue;
      double a[16][16], b[16][8], c[16][8];
      for (uint32_t l = 0; l < kSimdWidth; ++l) {
        for (uint32_t i = 0; i < 8; ++i) a[L::a_row(l, i)][L::a_col(l, i)] = args[i][base + l].f;
        for (uint32_t i = 0; i < 4; ++i) b[L::b_k(l, i)][L::b_n(l, i)] = args[8 + i][base + l].f;
        for (uint32_t i = 0; i < 4; ++i) c[L::c_row(l, i)][L::c_col(l, i)] = args[12 + i][base + l].f;
      }
      for (uint32_t l = 0; l < kSimdWidth; ++l)
        for (uint32_t i = 0; i < 4; ++i) {
          uint32_t row = L::c_row(l, i), col = L::c_col(l, i);
          double sum = c[row][col];
          for (uint32_t k = 0; k < 16; ++k) sum += a[row][k] * b[k][col];
          Scalar out;
          out.u64 = 0;
          out.f = static_cast<float>(sum);
          d.values[size_t{base + l} * 4 + i] = out;
        }
    }
  }

  // MmaAsync (docs/IR.md): each warpgroup of 128 threads multiplies A (64 x 16) by B (16 x n), both
  // read from core matrices of the threadgroup array when issued (one valid execution: the
  // hardware reads them before mma_wait returns), and thread t of it gets D's elements in mma's C
  // layout: rows 16 (t / 32) .. + 15, columns 8 j .. 8 j + 7 at lanes 4 j .. 4 j + 3. The
  // sanitizer counts every operand read as the warpgroup's first thread's.
  void mma_async(const Inst& in, const Mask& m) {
    namespace L = mma_layout;
    constexpr uint32_t kGroup = 4 * kSimdWidth;
    const Target mem = target(in);
    const uint32_t n = mma_async_n(in), swizzle = mma_async_swizzle(in), lanes = in.lanes;
    const bool b_kn = mma_async_b_kn(in), a_registers = mma_async_a_registers(in);
    const size_t b_arg = mma_async_b_arg(in), c_arg = mma_async_c_arg(in);
    VectorReg& d = vectors_[in.result];
    d.lanes = lanes;
    d.values.resize(size_t{n_} * lanes);
    for (uint32_t base = 0; base < n_; base += kGroup) {
      bool any_active = false;
      for (uint32_t w = 0; w < 4; ++w)
        any_active |= base + w * kSimdWidth < n_ && whole_simdgroup(in, m, base + w * kSimdWidth);
      if (!any_active) continue;
      if (base + kGroup > n_ || std::count(m.begin() + base, m.begin() + base + kGroup, 1) != kGroup)
        fault(in, base,
              fmt::format("mma_async in warpgroup {} (threads {}..{}) without all 128 of its threads: every thread "
                          "of the warpgroup must take part{}",
                          base / kGroup, base, base + kGroup - 1,
                          base + kGroup > n_ ? fmt::format(" (the threadgroup of {} threads is not a whole number of "
                                                           "128-thread warpgroups)",
                                                           n_)
                                             : ""));
      uint64_t f[6] = {};  // A's first index, k stride, row stride (A in threadgroup memory); B's
      for (uint32_t i = a_registers ? 3 : 0; i < 6; ++i) {
        const Scalar* op = reg(in.args[i < 3 ? i : b_arg + i - 3]);
        f[i] = op[base].u64;
        for (uint32_t t = base + 1; t < base + kGroup; ++t)
          if (op[t].u64 != f[i])
            fault(in, t,
                  fmt::format("mma_async operand {} is {} in thread {} and {} in thread {}: A's and B's indices and "
                              "strides are one value for the whole warpgroup",
                              i, f[i], base, op[t].u64, t));
        if (f[i] % 8 != 0 || f[i] * 2 >= (uint64_t{1} << 18))
          fault(in, base,
                fmt::format("mma_async operand {} ({}) of {}: {} {} must be a multiple of 8 elements (16 bytes) and "
                            "under 256 KiB, as a matrix descriptor holds it",
                            i, i < 3 ? "A" : "B", target_name(in), i % 3 == 0 ? "first index" : "stride", f[i]));
        // B stored [k][n]: its first index and both strides in whole atoms.
        if (b_kn && i >= 3 && f[i] % 512 != 0)
          fault(in, base,
                fmt::format("mma_async operand {} (B, stored [k][n]) of {}: {} {} is not a multiple of 512 elements "
                            "(a 1024-byte atom)",
                            i, target_name(in), i == 3 ? "first index" : "stride", f[i]));
        // Swizzled: 16 elements of k in one 128-byte row, rows in whole 1024-byte atoms.
        if (swizzle && i % 3 == 0 && f[i] % 64 > 48)
          fault(in, base,
                fmt::format("mma_async operand {} ({}) of {}: first index {} starts {} elements into a 64-element "
                            "swizzled row, where 16 do not fit",
                            i, i < 3 ? "A" : "B", target_name(in), f[i], f[i] % 64));
        if (swizzle && i % 3 == 2 && f[i] % 512 != 0)
          fault(in, base,
                fmt::format("mma_async operand {} ({}) of {}: row stride {} of swizzled rows is not a multiple of 512 "
                            "elements (a 1024-byte atom)",
                            i, i < 3 ? "A" : "B", target_name(in), f[i]));
      }
      // Swizzled, the logical index L of row 8 q + p, column k is first + q row_stride + 64 p + k, and
      // its 16-byte chunk (bits 3-5) is XORed with its row in the atom (bits 6-8), as the hardware
      // does with address bits 4-6 and 7-9 of an array aligned to 1024 bytes.
      // B stored [k][n] has rows of k instead: L = first + k / 8 k_stride + k % 8 64 + n / 64 row_stride
      // + n % 64.
      auto element = [&](const uint64_t* g, uint32_t row, uint32_t k) {
        uint64_t i = g[0] + row / 8 * g[2] + k / 8 * g[1] + row % 8 * 8 + k % 8;
        if (swizzle) {
          const uint64_t logical = g == f + 3 && b_kn ? g[0] + k / 8 * g[1] + k % 8 * 64 + row / 64 * g[2] + row % 64
                                                      : g[0] + row / 8 * g[2] + row % 8 * 64 + k;
          i = logical ^ ((logical >> 3) & 0x38);
        }
        check_bounds(in, base, i, mem, "mma_async operand read of");
        if (opts_.sanitize) {
          sanitize_read(in, base, i, mem);
          ++mem.array->shadow[i].mma_reads;  // until the warpgroup's mma_wait completes it
          mma_open_[base / kGroup].push_back({mem.array, i});
        }
        return double{load_element(mem.elem, mem.base, i).f};
      };
      if (opts_.sanitize && mma_open_.size() <= base / kGroup) {
        mma_open_.resize(base / kGroup + 1);
        mma_groups_.resize(base / kGroup + 1);
      }
      std::vector<double> a(64 * 16), b(size_t{n} * 16);
      if (a_registers) {  // each simdgroup's 16 rows from its lanes, in mma's A layout
        for (uint32_t t = base; t < base + kGroup; ++t) {
          const uint32_t lane = (t - base) % kSimdWidth, row0 = (t - base) / kSimdWidth * 16;
          for (uint32_t e = 0; e < L::kAElements; ++e)
            a[(row0 + L::a_row(lane, e)) * 16 + L::a_col(lane, e)] = reg(in.args[e])[t].f;
        }
      } else {
        for (uint32_t r = 0; r < 64; ++r)
          for (uint32_t k = 0; k < 16; ++k) a[r * 16 + k] = element(f, r, k);
      }
      for (uint32_t c = 0; c < n; ++c)
        for (uint32_t k = 0; k < 16; ++k) b[c * 16 + k] = element(f + 3, c, k);
      for (uint32_t t = base; t < base + kGroup; ++t) {
        const uint32_t lane = (t - base) % kSimdWidth, row0 = (t - base) / kSimdWidth * 16;
        for (uint32_t j = 0; j < lanes; ++j) {
          const uint32_t row = row0 + L::c_row(lane, j % 4), col = j / 4 * 8 + L::c_col(lane, j % 4);
          double sum = reg(in.args[c_arg + j])[t].f;
          for (uint32_t k = 0; k < 16; ++k) sum += a[row * 16 + k] * b[col * 16 + k];
          Scalar out;
          out.u64 = 0;
          out.f = static_cast<float>(sum);
          d.values[size_t{t} * lanes + j] = out;
        }
      }
    }
  }

  // MmaWait: every thread of each simdgroup waits together; D's elements come back as they are.
  // The sanitizer commits the warpgroup's open mma_async reads as a group and completes all but
  // the `bits` newest groups (their elements may be written again).
  void mma_wait(const Inst& in, const Mask& m) {
    VectorReg& d = vectors_[in.result];
    d.lanes = in.lanes;
    d.values.resize(size_t{n_} * in.lanes);
    for (uint32_t base = 0; base < n_; base += kSimdWidth) {
      if (!whole_simdgroup(in, m, base)) continue;
      for (uint32_t t = base; t < base + kSimdWidth; ++t)
        for (uint32_t j = 0; j < in.lanes; ++j) d.values[size_t{t} * in.lanes + j] = reg(in.args[j])[t];
      const uint32_t group = base / (4 * kSimdWidth);
      if (!opts_.sanitize || group >= mma_open_.size() || base % (4 * kSimdWidth) != 0) continue;
      if (!mma_open_[group].empty()) mma_groups_[group].push_back(std::move(mma_open_[group]));
      mma_open_[group].clear();
      while (mma_groups_[group].size() > in.bits) {
        for (const auto& [array, i] : mma_groups_[group].front()) --array->shadow[i].mma_reads;
        mma_groups_[group].pop_front();
      }
    }
  }

  // LoadMatrix (docs/IR.md): lanes / 2 matrices of 8 x 8; row r of matrix j starts at the index
  // lane 8 j + r gives (16-byte aligned, all 8 elements in bounds). Lane l gets row l / 4, columns
  // 2 (l % 4) and 2 (l % 4) + 1 of each matrix, or with `bits` 1 (transposed) rows 2 (l % 4) and
  // 2 (l % 4) + 1 of column l / 4. The element a lane gets is that lane's read, for the sanitizer.
  void load_matrix(const Inst& in, const Mask& m) {
    const Target mem = target(in);
    const uint32_t lanes = in.lanes, matrices = lanes / 2;
    VectorReg& v = vectors_[in.result];
    v.lanes = lanes;
    v.values.resize(size_t{n_} * lanes);
    for (uint32_t base = 0; base < n_; base += kSimdWidth) {
      if (!whole_simdgroup(in, m, base)) continue;
      uint64_t row[32];
      for (uint32_t src = 0; src < 8 * matrices; ++src) {
        uint64_t i = index(in, base + src);
        if (i % 8 != 0)
          fault(in, base + src,
                fmt::format("matrix load of {}: row {} of matrix {} starts at index {}, not a multiple of 8 "
                            "(16 bytes: misaligned)",
                            target_name(in), src % 8, src / 8, i));
        if (i + 8 > mem.count)
          fault(in, base + src,
                fmt::format("matrix load of {}: row {} of matrix {} at indices {}..{} is out of bounds ({} elements)",
                            target_name(in), src % 8, src / 8, i, i + 7, mem.count));
        row[src] = i;
      }
      for (uint32_t l = 0; l < kSimdWidth; ++l)
        for (uint32_t j = 0; j < matrices; ++j)
          for (uint32_t e = 0; e < 2; ++e) {
            uint32_t r = in.bits ? 2 * (l % 4) + e : l / 4, c = in.bits ? l / 4 : 2 * (l % 4) + e;
            uint64_t i = row[8 * j + r] + c;
            if (opts_.sanitize) sanitize_read(in, base + l, i, mem);
            v.values[size_t{base + l} * lanes + 2 * j + e] = load_element(mem.elem, mem.base, i);
          }
    }
  }

  // copy_async: the copy happens when it is issued, which is one valid execution (docs/IR.md). The
  // sanitizer sees a device load and a threadgroup store, and marks the destination pending until
  // the thread waits for it: a read or write of it before then is a fault.
  void copy_async(const Inst& in, const Mask& m) {
    Array& dst = arrays_.at(in.param);
    const int src_param = copy_source(in);
    const TensorView& tv = tensors_.at(src_param);
    auto& w = launch_.written[src_param];
    const Target src{tv.data, tv.elem, tv.count, nullptr, w ? w.get() : nullptr};
    const Target to{dst.bytes.data(), dst.elem, dst.count, &dst, nullptr};
    const size_t bytes = storage_bytes(dst.elem);
    const uint32_t lanes = in.lanes;
    each(m, [&](uint32_t t) {
      uint64_t j = index(in, t), i = index_value(type_of(in.args[1]), reg(in.args[1])[t]);
      if (i % lanes != 0 || j % lanes != 0)
        fault(in, t,
              fmt::format("copy_async of {} elements from '{}' at index {} into {} at index {}: both indices must be "
                          "multiples of {} (misaligned)",
                          lanes, f_.params[src_param].name, i, target_name(in), j, lanes));
      if (i + lanes > tv.count)
        fault(in, t,
              fmt::format("copy_async from '{}' at indices {}..{} is out of bounds ({} elements)",
                          f_.params[src_param].name, i, i + lanes - 1, tv.count));
      if (j + lanes > dst.count)
        fault(in, t,
              fmt::format("copy_async into {} at indices {}..{} is out of bounds ({} elements)", target_name(in), j,
                          j + lanes - 1, dst.count));
      for (uint32_t l = 0; l < lanes; ++l) {
        if (opts_.sanitize) {
          if (src.written && !src.written[i + l].load(std::memory_order_relaxed))
            fault(in, t,
                  fmt::format("copy_async from '{}' at index {} before anything wrote it (an Out tensor holds nothing "
                              "yet)",
                              f_.params[src_param].name, i + l));
          sanitize_write(in, t, j + l, to);
          dst.shadow[j + l].copying = true;
          dst.shadow[j + l].tile = false;
        }
        std::memcpy(dst.bytes.data() + (j + l) * bytes, static_cast<const uint8_t*>(src.base) + (i + l) * bytes, bytes);
      }
      if (opts_.sanitize) pending_[t].push_back({&dst, j, lanes, 0});
    });
  }

  // copy_tile: the box lands when it is issued (one valid execution, docs/IR.md "Tile copies"); its
  // bytes count against the mbarrier's phase. With the sanitizer the destination is written by
  // this thread and pending until the phase completes, which is what orders it before a waiter.
  void copy_tile(const Inst& in, uint32_t t) {
    Array& dst = arrays_.at(in.param);
    const int src_param = copy_source(in);
    const TensorView& tv = tensors_.at(src_param);
    const std::string& name = f_.params[src_param].name;
    const uint32_t rank = copy_tile_rank(in), swizzle = copy_tile_swizzle(in);
    const size_t bytes = storage_bytes(dst.elem);
    uint64_t dims[3] = {1, 1, 1}, strides[3] = {1, 0, 0}, box[3] = {1, 1, 1};
    int64_t at[3] = {0, 0, 0};
    auto u = [&](size_t a) { return uint64_t{reg(in.args[a])[t].u}; };
    for (uint32_t d = 0; d < rank; ++d) {
      at[d] = reg(in.args[copy_tile_coord_arg(in, d)])[t].i;
      dims[d] = u(copy_tile_dim_arg(in, d));
      box[d] = u(copy_tile_box_arg(in, d));
      if (d) strides[d] = u(copy_tile_stride_arg(in, d));
    }
    const uint64_t j = index(in, t), row_bytes = box[0] * bytes, total = box[0] * box[1] * box[2];
    auto bad = [&](const std::string& why) {
      fault(in, t,
            fmt::format("copy_tile of a {}-element box from '{}' into {} at index {}: {}", total, name, target_name(in),
                        j, why));
    };
    uint64_t last = dims[0] - 1;  // the view's last element must be inside the tensor
    for (uint32_t d = 0; d < rank; ++d) {
      if (dims[d] == 0) bad(fmt::format("dim {} is 0", d));
      if (box[d] == 0 || box[d] > 256) bad(fmt::format("box size {} of dim {} (1 to 256)", box[d], d));
      if (d && strides[d] * bytes % 16 != 0)
        bad(fmt::format("the stride of dim {} is {} bytes, not a multiple of 16", d, strides[d] * bytes));
      if (d) last += (dims[d] - 1) * strides[d];
    }
    if (last >= tv.count) bad(fmt::format("the view reaches element {} of a tensor of {}", last, tv.count));
    if (row_bytes % 16 != 0) bad(fmt::format("a box row is {} bytes, not a multiple of 16", row_bytes));
    if (swizzle && row_bytes != 128)
      bad(fmt::format("a box row is {} bytes; swizzle 128 takes rows of 128", row_bytes));
    const uint64_t align = swizzle ? 1024 : 128;
    if (j * bytes % align != 0)
      bad(fmt::format("the destination's byte offset {} is not a multiple of {}", j * bytes, align));
    if (j + total > dst.count) bad(fmt::format("it overruns the array of {} elements", dst.count));
    Mbarrier& b = mbarrier(in, t);
    auto& w = launch_.written[src_param];
    const Target to{dst.bytes.data(), dst.elem, dst.count, &dst, nullptr};
    Mbarrier::Landing landing{&dst, {}};
    for (uint64_t e = 0; e < total; ++e) {
      const uint64_t c[3] = {e % box[0], e / box[0] % box[1], e / (box[0] * box[1])};
      bool inside = true;
      uint64_t i = 0;
      for (uint32_t d = 0; d < 3; ++d) {
        const int64_t x = at[d] + static_cast<int64_t>(c[d]);
        inside = inside && x >= 0 && static_cast<uint64_t>(x) < dims[d];
        if (inside) i += static_cast<uint64_t>(x) * strides[d];
      }
      // Swizzled: 16-byte chunk q of the box's 128-byte row r lands at chunk q ^ (r % 8).
      uint64_t k = e;
      if (swizzle) {
        const uint64_t per_chunk = 16 / bytes, row = e / box[0], q = e % box[0] / per_chunk;
        k = row * box[0] + ((q ^ (row % 8)) * per_chunk) + e % per_chunk;
      }
      k += j;
      if (opts_.sanitize) {
        if (inside && w && !w[i].load(std::memory_order_relaxed))
          fault(in, t,
                fmt::format("copy_tile from '{}' at index {} before anything wrote it (an Out tensor holds nothing "
                            "yet)",
                            name, i));
        sanitize_write(in, t, k, to);
        dst.shadow[k].copying = dst.shadow[k].tile = true;
        landing.indices.push_back(k);
      }
      if (inside)
        std::memcpy(dst.bytes.data() + k * bytes, static_cast<const uint8_t*>(tv.data) + i * bytes, bytes);
      else
        std::memset(dst.bytes.data() + k * bytes, 0, bytes);
    }
    if (opts_.sanitize) b.landing.push_back(std::move(landing));
    if (!clocks_.empty()) {  // a waiter on the phase knows these writes
      join(b.arrived, &clocks_[size_t{t} * n_]);
      ++clocks_[size_t{t} * n_ + t];
    }
    b.bytes -= static_cast<int64_t>(total * bytes);
    over_landed(in, t, b);
    complete_phase(b);
  }

  // The sanitizer's async-copy groups of a thread: copies not yet committed have group 0; commit
  // numbers them; a wait for n completes all but the n most recently committed groups.
  void commit_copies(uint32_t t) {
    uint32_t& group = committed_[t];
    ++group;
    for (PendingCopy& c : pending_[t])
      if (c.group == 0) c.group = group;
  }
  void wait_copies(uint32_t t, uint64_t allowed) {
    const uint32_t newest = committed_[t];
    auto& list = pending_[t];
    std::vector<PendingCopy> still;
    for (PendingCopy& c : list) {
      bool done = c.group != 0 && newest - c.group >= allowed;
      if (!done) {
        still.push_back(c);
        continue;
      }
      for (uint32_t l = 0; l < c.lanes; ++l) c.array->shadow[c.index + l].copying = false;
    }
    list = std::move(still);
  }

  // for and loop. A thread leaves on its condition (for), a break or a return; a continue ends
  // only its current iteration.
  void loop(const Inst& in, const Mask& m) {
    bool counted = in.op == Op::For;
    Scalar *start = nullptr, *end = nullptr, *step = nullptr, *iv = nullptr;
    if (counted) {
      start = reg(in.args[0]), end = reg(in.args[1]), step = reg(in.args[2]), iv = reg(in.result);
      each(m, [&](uint32_t t) {
        if (step[t].u == 0 && start[t].u < end[t].u) fault(in, t, "for_ loop with step 0 would never end");
        iv[t] = start[t];
      });
    }
    loops_.push_back({Mask(n_, 0), Mask(n_, 0)});
    Mask active = m;
    for (;;) {
      Mask body_m = active;
      if (counted) each(active, [&](uint32_t t) { body_m[t] = active[t] = iv[t].u < end[t].u; });
      if (!any(body_m)) break;
      if (++iterations_ > opts_.loop_budget)
        fault(in, static_cast<uint32_t>(std::find(body_m.begin(), body_m.end(), 1) - body_m.begin()),
              fmt::format("runaway loop: this threadgroup ran more than {} loop iterations, its loop budget (a "
                          "loop that never ends? `mtile run --loop-budget N` or CpuOptions::loop_budget raise it)",
                          opts_.loop_budget));
      std::fill(loops_.back().continued.begin(), loops_.back().continued.end(), 0);
      block(in.blocks[0], body_m);
      each(active, [&](uint32_t t) {
        if (loops_.back().broken[t] || returned_[t]) active[t] = 0;
      });
      // A step that would pass the end ends the loop: the induction never wraps past 2^32.
      if (counted)
        each(active, [&](uint32_t t) { iv[t].u = end[t].u - iv[t].u > step[t].u ? iv[t].u + step[t].u : end[t].u; });
    }
    loops_.pop_back();
  }

  static constexpr uint32_t kSimdWidth = 32;

  const Function& f_;
  const Geometry& g_;
  const std::vector<TensorView>& tensors_;
  const std::vector<uint64_t>& values_;
  const EngineOptions& opts_;
  Launch& launch_;
  uint32_t n_;
  uint32_t group_[3] = {0, 0, 0};
  std::vector<Scalar> regs_;
  std::vector<ScalarType> types_;
  std::unordered_map<Id, Array> arrays_;
  // LoadVector, LoadMatrix and Mma results: `lanes` values per thread, thread t's at [t * lanes, (t + 1) * lanes).
  struct VectorReg {
    uint32_t lanes = 1;
    std::vector<Scalar> values;
  };
  std::unordered_map<Id, VectorReg> vectors_;  // and Mma results, 4 lanes
  struct PendingCopy {
    Array* array;
    uint64_t index;
    uint32_t lanes;
    uint32_t group;  // 0 until committed
  };
  std::vector<std::vector<PendingCopy>> pending_;  // per thread, with `sanitize`
  std::vector<uint32_t> committed_;                // groups each thread committed
  // With `sanitize`, per warpgroup: the elements its mma_asyncs read since its last mma_wait, and
  // the groups an mma_wait committed that are still in flight, oldest first.
  using MmaReads = std::vector<std::pair<Array*, uint64_t>>;
  std::vector<MmaReads> mma_open_;
  std::vector<std::deque<MmaReads>> mma_groups_;
  struct LoopState {
    Mask broken, continued;
  };
  std::vector<LoopState> loops_;  // innermost last
  Mask returned_;
  uint64_t iterations_ = 0;
  uint32_t epoch_ = 1;  // barriers passed, for the sanitizer
  bool uses_mbarriers_ = false;
  std::vector<uint32_t> clocks_;  // n x n, with the sanitizer where the kernel uses mbarriers
};

}  // namespace

void execute(const ir::Function& f, const Geometry& g, const std::vector<TensorView>& tensors,
             const std::vector<uint64_t>& values, const EngineOptions& opts) {
  if (tensors.size() != f.params.size() || values.size() != f.params.size())
    throw Error(fmt::format("CPU engine: kernel {} takes {} parameters, got {} tensors and {} values", f.name,
                            f.params.size(), tensors.size(), values.size()));
  if (g.tpg == 0) throw Error(fmt::format("CPU engine: kernel {}: zero threads per threadgroup", f.name));
  if (f.tpg != 0 && g.tpg != f.tpg)
    throw Error(fmt::format("CPU engine: kernel {} was lowered for {} threads per threadgroup, launched with {}",
                            f.name, f.tpg, g.tpg));
  Launch launch;
  launch.written.resize(tensors.size());
  if (opts.sanitize)
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].output) {
        launch.written[i] = std::make_unique<std::atomic<uint8_t>[]>(tensors[i].count);
        for (uint64_t e = 0; e < tensors[i].count; ++e) launch.written[i][e].store(0, std::memory_order_relaxed);
      }
  uint64_t total = g.threadgroups();
  unsigned workers = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  workers = static_cast<unsigned>(std::min<uint64_t>(workers, total));
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  uint64_t failed_at = UINT64_MAX;
  std::exception_ptr failure;
  auto work = [&] {
    Threadgroup tg(f, g, tensors, values, opts, launch);
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
