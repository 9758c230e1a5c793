// The generator: see generator.hpp. It tracks, per value, its type, whether it is the same for
// every thread of a threadgroup (`uniform`: only such values steer control flow around barriers,
// simdgroup operations and reductions) and whether it may carry a transcendental function's
// rounding (`inexact`, for GenOptions::bounded_inexact).
#include "fuzz/generator.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>

namespace mtile::fuzz {
namespace {

using ir::Op;
using K = Stmt::Kind;
using ST = ScalarType;

// Types of values; of values simdgroup operations and reductions take; of tensors and
// threadgroup arrays (the 8- and 16-bit and fp8 ones load as u32, i32 or f32 and store narrowed).
constexpr ST kTypes[] = {ST::u32, ST::i32, ST::f32, ST::f16, ST::bf16, ST::boolean, ST::u64, ST::i64};
constexpr ST kArithmeticTypes[] = {ST::u32, ST::i32, ST::f32, ST::f16, ST::bf16, ST::u64, ST::i64};
constexpr ST kMemoryTypes[] = {ST::u32, ST::i32, ST::f32, ST::f16, ST::bf16,   ST::u64,   ST::i64,
                               ST::u8,  ST::i8,  ST::u16, ST::i16, ST::f8e4m3, ST::f8e5m2};

bool transcendental(Op op) {
  return op == Op::Rsqrt || op == Op::Exp || op == Op::Exp2 || op == Op::Log || op == Op::Tanh || op == Op::Erf ||
         op == Op::Sin || op == Op::Cos || op == Op::Log1p || op == Op::Expm1 || op == Op::Sigmoid || op == Op::Pow ||
         op == Op::Exp2Ftz;
}

// What an operand must be.
struct Need {
  bool uniform = false;
  bool exact = false;
};

// Atomics the IR has on memory of type t (u32 and i32: every one; f32: add).
std::vector<ir::AtomicOp> atomics_on(ST t) {
  using A = ir::AtomicOp;
  if (t == ST::f32) return {A::Add};
  return {A::Add, A::Min, A::Max, A::Exchange, A::CompareExchange};
}

class Generator {
 public:
  Generator(uint64_t seed, const GenOptions& o) : rng_(seed), o_(o) { p_.seed = seed; }

  Program run() {
    setup();
    scopes_.emplace_back();
    cur_ = &p_.body;
    // Locals declared first, so that what the bodies of ifs and loops compute can flow out.
    for (int k = 0, n = 1 + static_cast<int>(below(3)); k < n; ++k) var_decl();
    block(o_.max_stmts);
    for (int l : scopes_.back().locals) var_get(l);
    // Every output element is written: a final store to each slot at the top level, of a value
    // nothing used yet where there is one, so that most of what was computed shows.
    for (size_t j = 0; j < p_.outputs.size(); ++j)
      for (uint32_t k = 0; k < p_.outputs[j].stride; ++k) store(static_cast<int>(j), k, true);
    return std::move(p_);
  }

 private:
  struct Value {
    ST type;
    bool uniform, inexact;
    int uses = 0;
    bool hidden = false;  // order-dependent (an atomic's result on a GPU): never an operand
  };
  struct Local {
    ST type;
    bool uniform, inexact;  // what every value it holds is: fixed when it is declared
  };
  struct Scope {
    std::vector<int> values, locals;
  };

  uint64_t below(uint64_t n) { return n ? rng_() % n : 0; }
  bool chance(double p) { return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }
  template <class T, size_t N>
  T one_of(const T (&a)[N]) {
    return a[below(N)];
  }
  template <class T>
  T one_of(const std::vector<T>& v) {
    return v[below(v.size())];
  }

  // ---- the kernel's shape, tensors and constexprs
  void setup() {
    Geometry& g = p_.geometry;
    g.tpg = chance(0.8) ? one_of({32u, 64u, 96u, 128u, 256u, 32u, 64u, 1024u}) : one_of({1u, 3u, 17u, 40u, 100u});
    if (g.tpg == 1024)  // the most a threadgroup takes, and W * W threads: a full threadgroup reduction
      g.grid = {1, 1, 1};
    else
      g.grid = {static_cast<uint32_t>(1 + below(3)), chance(0.3) ? 2u : 1u, chance(0.15) ? 2u : 1u};
    simd_ok_ = g.tpg % 32 == 0;
    int n_in = 1 + static_cast<int>(below(4));
    for (int i = 0; i < n_in; ++i)
      p_.inputs.push_back({fmt::format("in{}", i), some_memory_type(), one_of({1u, 2u, 4u, 8u}), 0, {}});
    if (chance(0.5)) {
      p_.has_inout = true;
      p_.inout = {"io", some_memory_type(), one_of({1u, 2u, 4u}), 0, {}};
      mark_inexact(p_.inout);
    }
    // Atomics' target: a few elements every thread hits. On a GPU only integer add, min and max
    // leave memory that does not depend on the threads' order.
    if (chance(0.4)) {
      p_.has_acc = true;
      ST t = o_.bounded_inexact ? one_of({ST::u32, ST::i32}) : one_of({ST::u32, ST::i32, ST::f32});
      p_.acc = {"acc", t, 1, one_of({1u, 4u, 16u}), {}};
    }
    for (ST t : kMemoryTypes)
      if (chance(is_value_type(t) && !is_64bit(t) ? 0.5 : 0.2) || (t == ST::bf16 && p_.outputs.empty()))
        p_.outputs.push_back({fmt::format("out_{}", type_name(t)), t, one_of({1u, 2u, 4u, 8u}), 0, {}});
    for (TensorDesc& o : p_.outputs) mark_inexact(o);
    for (int k = 0; k < 2; ++k) p_.constexprs.push_back({fmt::format("k{}", k), some_u32(), -1, chance(0.5)});
    for (int i = 0; i < n_in; ++i) p_.constexprs.push_back({fmt::format("len{}", i), 0, i, chance(0.5)});
    for (int k = 0, n = static_cast<int>(below(3)); k < n; ++k) {
      ST t = one_of(kArithmeticTypes);
      p_.scalars.push_back({fmt::format("s{}", k), t, some_bits(t)});
    }
  }

  // The types of before (u32 .. bf16) as often as the 8- and 16-bit, fp8 and 64-bit ones together.
  ST some_memory_type() {
    return chance(0.5) ? one_of({ST::u32, ST::i32, ST::f32, ST::f16, ST::bf16}) : one_of(kMemoryTypes);
  }

  void mark_inexact(TensorDesc& t) {
    t.inexact.assign(t.stride, false);
    if (o_.bounded_inexact && is_float(t.elem))
      for (uint32_t k = 0; k < t.stride; ++k) t.inexact[k] = chance(0.4);
  }

  uint32_t some_u32() {
    switch (below(4)) {
      case 0: return static_cast<uint32_t>(below(8));
      case 1: return one_of({31u, 32u, 33u, 255u, 0x7fffffffu, 0x80000000u, 0xffffffffu});
      case 2: return static_cast<uint32_t>(below(1000));
      default: return static_cast<uint32_t>(rng_());
    }
  }

  // The bits of a constant of type t (float constants: the f32 bits of a value of type t).
  uint64_t some_bits(ST t) {
    if (t == ST::boolean) return below(2);
    if (t == ST::u32) return some_u32();
    if (is_64bit(t)) {
      static const uint64_t special[] = {
          0, 1, ~uint64_t{0}, uint64_t{1} << 32, 0xffffffffu, uint64_t{1} << 63, (uint64_t{1} << 63) - 1, 63, 64};
      switch (below(3)) {
        case 0: return one_of(special);
        case 1: return t == ST::i64 ? static_cast<uint64_t>(static_cast<int64_t>(below(2001)) - 1000) : below(5000);
        default: return rng_();
      }
    }
    if (t == ST::i32) {
      static const int32_t special[] = {
          0, 1, -1, 2, -2, 31, 32, -32, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
      return chance(0.5) ? static_cast<uint32_t>(one_of(special))
                         : static_cast<uint32_t>(chance(0.5) ? static_cast<int32_t>(below(200)) - 100
                                                             : static_cast<int32_t>(rng_()));
    }
    static const double special[] = {0.0,       -0.0,    1.0,     -1.0, 0.5,   2.0,   3.0,  1e-3,
                                     100.0,     65504.0, 65520.0, 1e30, -1e30, 1e-40, 1e-6, INFINITY,
                                     -INFINITY, NAN,     3.4e38,  1.5,  -2.75, 0.1};
    double v = chance(0.5) ? one_of(special) : (static_cast<double>(below(2001)) - 1000.0) / 64.0;
    return ir::const_bits(t, v);
  }

  // ---- values and scopes
  int define(ST t, bool uniform, bool inexact, bool hidden = false) {
    int v = static_cast<int>(values_.size());
    values_.push_back({t, uniform, inexact && o_.bounded_inexact, 0, hidden});
    scopes_.back().values.push_back(v);
    return v;
  }

  void emit(Stmt s) {
    cur_->push_back(std::move(s));
    ++stmts_;
  }

  bool fits(const Value& v, ST t, Need n) const {
    return v.type == t && !v.hidden && (!n.uniform || v.uniform) && (!n.exact || !v.inexact);
  }

  // Every thread of the threadgroup runs the statements made now (none returned early).
  bool uniform_here() const { return uniform_ && !returned_divergently_; }

  // A visible value of type t, usually one already made (recent ones more often), else a new leaf.
  int pick(ST t, Need n = {}) {
    std::vector<int> fit;
    for (const Scope& s : scopes_)
      for (int v : s.values)
        if (fits(values_[v], t, n)) fit.push_back(v);
    int v = -1;
    if (!fit.empty() && chance(0.8))
      v = fit.size() > 6 && chance(0.5) ? fit[fit.size() - 1 - below(6)] : one_of(fit);
    else
      v = leaf(t, n);
    ++values_[v].uses;
    return v;
  }

  // The most recent visible value of type t that nothing uses yet and that fits `n`, or -1.
  int unused(ST t, Need n) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s)
      for (auto v = s->values.rbegin(); v != s->values.rend(); ++v)
        if (values_[*v].uses == 0 && fits(values_[*v], t, n)) return *v;
    return -1;
  }

  // Makes value v reach an output: into a local declared outside this block, or stored.
  void sink(int v) {
    const Value& val = values_[v];
    std::vector<int> into;
    for (size_t s = 0; s + 1 < scopes_.size(); ++s)
      for (int l : scopes_[s].locals)
        if (locals_[l].type == val.type && (!locals_[l].uniform || (uniform_here() && val.uniform)) &&
            (locals_[l].inexact || !val.inexact))
          into.push_back(l);
    ++values_[v].uses;
    Stmt s;
    s.args = {v};
    s.type = val.type;
    if (!into.empty()) {
      s.kind = K::VarSet;
      s.slot = one_of(into);
    } else {
      std::vector<std::pair<int, int>> slots;  // (output, slot)
      for (size_t j = 0; j < p_.outputs.size(); ++j)
        for (uint32_t k = 0; k < p_.outputs[j].stride; ++k)
          if (value_type(p_.outputs[j].elem) == val.type && (p_.outputs[j].inexact[k] || !val.inexact))
            slots.push_back({static_cast<int>(j), static_cast<int>(k)});
      if (slots.empty()) return;
      s.kind = K::Store;
      std::tie(s.tensor, s.slot) = one_of(slots);
    }
    emit(s);
  }

  int constant(ST t) {
    Stmt s;
    s.kind = K::Const;
    s.type = t;
    s.imm = some_bits(t);
    s.value = define(t, true, false);
    emit(s);
    return s.value;
  }

  // A new value with few operands of its own: a constant, a builtin, a load, a cast, a compare.
  int leaf(ST t, Need n) {
    if (leaf_depth_ > 2) return constant(t);
    ++leaf_depth_;
    int v = leaf_of(t, n);
    --leaf_depth_;
    return v;
  }

  int leaf_of(ST t, Need n) {
    switch (below(5)) {
      case 0: return constant(t);
      case 1:
        if (t == ST::u32) return builtin(n.uniform);
        if (t == ST::boolean) return compare(n);
        return cast(t, n);
      case 2: {
        std::vector<int> ss;
        for (size_t k = 0; k < p_.scalars.size(); ++k)
          if (p_.scalars[k].type == t) ss.push_back(static_cast<int>(k));
        if (ss.empty()) return constant(t);
        Stmt s;
        s.kind = K::ScalarRef;
        s.type = t;
        s.slot = one_of(ss);
        s.value = define(t, true, false);
        emit(s);
        return s.value;
      }
      default: {
        std::vector<int> ins;
        for (size_t i = 0; i < p_.inputs.size(); ++i)
          if (value_type(p_.inputs[i].elem) == t) ins.push_back(static_cast<int>(i));
        if (!ins.empty()) return load(one_of(ins), n.uniform);
        if (t == ST::boolean) return compare(n);
        return t == ST::u32 ? builtin(n.uniform) : cast(t, n);
      }
    }
  }

  int builtin(bool uniform) {
    Stmt s;
    s.type = ST::u32;
    if (!uniform && chance(0.6)) {
      s.kind = K::Builtin;
      s.op = one_of({Op::ThreadId, Op::SimdLane, Op::SimdGroup});
    } else if (chance(0.3)) {
      s.kind = K::ConstexprRef;
      s.slot = static_cast<int>(below(p_.constexprs.size()));
    } else {
      s.kind = K::Builtin;
      s.op = one_of({Op::ProgramId, Op::GridSize, Op::ThreadgroupSize});
      if (s.op != Op::ThreadgroupSize) s.imm = below(2);
    }
    bool is_uniform =
        s.kind == K::ConstexprRef || (s.op != Op::ThreadId && s.op != Op::SimdLane && s.op != Op::SimdGroup);
    s.value = define(ST::u32, is_uniform, false);
    emit(s);
    return s.value;
  }

  int cast(ST to, Need n) {
    ST from = one_of(kTypes);
    while (from == to || (from == ST::boolean && is_float(to))) from = one_of(kTypes);
    int a = pick(from, {n.uniform, true});
    Stmt s;
    s.kind = K::Unary;
    s.op = Op::Cast;
    s.type = to;
    s.from = from;
    s.args = {a};
    s.value = define(to, values_[a].uniform, false);
    emit(s);
    return s.value;
  }

  int compare(Need n) {
    ST t = one_of(kTypes);
    int a = pick(t, {n.uniform, true}), b = pick(t, {n.uniform, true});
    Stmt s;
    s.kind = K::Binary;
    s.op = one_of({Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne});
    s.type = ST::boolean;
    s.from = t;
    s.args = {a, b};
    s.value = define(ST::boolean, values_[a].uniform && values_[b].uniform, false);
    emit(s);
    return s.value;
  }

  int load(int input, bool uniform) {
    const TensorDesc& t = p_.inputs[input];
    Stmt s;
    s.kind = K::Load;
    s.slot = input;
    s.type = value_type(t.elem);
    bool is_uniform = false;
    if (uniform || chance(0.4)) {
      s.mode = Stmt::IndexMode::Computed;
      s.args = {pick(ST::u32, {uniform, true})};
      s.imm = below(2);  // 1: modulo the length constexpr
      is_uniform = values_[s.args[0]].uniform;
    } else {
      s.mode = Stmt::IndexMode::Own;
      s.imm = below(t.stride);
    }
    s.value = define(s.type, is_uniform, false);
    emit(s);
    return s.value;
  }

  // ---- statements
  void block(int budget) {
    for (int made = 0; made < budget && stmts_ < o_.max_stmts; ++made) statement();
  }

  void nested(std::vector<Stmt>& into, bool uniform, int induction = -1) {
    std::vector<Stmt>* outer = cur_;
    bool outer_uniform = uniform_;
    cur_ = &into;
    uniform_ = uniform;
    scopes_.emplace_back();
    if (induction >= 0) scopes_.back().values.push_back(induction);
    ++depth_;
    block(1 + static_cast<int>(below(6)));
    std::vector<int> idle;
    for (int v : scopes_.back().values)
      if (values_[v].uses == 0 && v != induction && !values_[v].hidden) idle.push_back(v);
    for (size_t k = idle.size() > 2 ? idle.size() - 2 : 0; k < idle.size(); ++k) sink(idle[k]);
    --depth_;
    scopes_.pop_back();
    uniform_ = outer_uniform;
    cur_ = outer;
  }

  enum class Choice {
    Unary,
    Binary,
    Bitcast,
    Test,
    MaskedLoad,
    MaskedStore,
    DeviceAtomic,
    TgAtomic,
    While,
    Break,
    Continue,
    Return,
    Select,
    Fma,
    Cast,
    Load,
    LoadRun,
    Based,
    Window,
    Simd,
    Reduce,
    Exchange,
    VarDecl,
    VarSet,
    VarGet,
    If,
    For,
    Store,
    InOutLoad,
    InOutStore,
    Const,
    kCount
  };

  void statement() {
    static const int weight[] = {10, 22, 2, 2, 3, 2, 3, 2, 2, 2, 2, 1, 5, 2, 8, 6,
                                 3,  3,  4, 4, 2, 2, 3, 4, 3, 4, 3, 3, 2, 2, 2};
    static_assert(std::size(weight) == static_cast<size_t>(Choice::kCount));
    for (;;) {
      int total = 0;
      for (int w : weight) total += w;
      int r = static_cast<int>(below(total)), c = 0;
      while (r >= weight[c]) r -= weight[c++];
      if (try_statement(static_cast<Choice>(c))) return;
    }
  }

  bool try_statement(Choice c) {
    const bool collective = uniform_here() && simd_ok_;
    switch (c) {
      case Choice::Unary: return unary();
      case Choice::Binary: return binary();
      case Choice::Bitcast: return bitcast();
      case Choice::Test: return test();
      case Choice::MaskedLoad: return masked_load();
      case Choice::MaskedStore: return masked_store();
      case Choice::DeviceAtomic: return p_.has_acc && device_atomic();
      case Choice::TgAtomic: return uniform_here() && tg_atomic();
      case Choice::While: return depth_ < o_.max_depth && while_stmt();
      case Choice::Break: return loop_exit(K::Break);
      case Choice::Continue: return loop_exit(K::Continue);
      case Choice::Return: return return_stmt();
      case Choice::Select: return select();
      case Choice::Fma: return fma();
      case Choice::Cast: return cast(one_of(kTypes), {}) >= 0;
      case Choice::Load: return load(static_cast<int>(below(p_.inputs.size())), false) >= 0;
      case Choice::LoadRun: return load_run();
      case Choice::Based: return based_loads();
      case Choice::Window: return window_loads();
      case Choice::Simd: return collective && simd();
      case Choice::Reduce: return collective && reduce();
      case Choice::Exchange: return uniform_here() && exchange();
      case Choice::VarDecl: return var_decl();
      case Choice::VarSet: return var_set();
      case Choice::VarGet: {
        std::vector<int> ls = visible_locals();
        return !ls.empty() && var_get(one_of(ls)) >= 0;
      }
      case Choice::If: return depth_ < o_.max_depth && if_stmt();
      case Choice::For: return depth_ < o_.max_depth && for_stmt();
      case Choice::Store:
        return store(static_cast<int>(below(p_.outputs.size())), static_cast<uint32_t>(below(8)), false);
      case Choice::InOutLoad: return p_.has_inout && inout_load();
      case Choice::InOutStore: return p_.has_inout && inout_store();
      case Choice::Const: return constant(one_of(kTypes)) >= 0;
      case Choice::kCount: break;
    }
    return false;
  }

  bool unary() {
    ST t = one_of(kTypes);
    std::vector<Op> ops;
    if (is_float(t))
      ops = {Op::Neg,  Op::Abs, Op::Floor, Op::Sqrt, Op::Rsqrt, Op::Exp,   Op::Exp2,    Op::Log,
             Op::Tanh, Op::Erf, Op::Sin,   Op::Cos,  Op::Log1p, Op::Expm1, Op::Sigmoid, Op::Exp2Ftz};
    else if (t == ST::i32 || t == ST::i64)
      ops = {Op::Neg, Op::Abs, Op::Not};
    else
      ops = {Op::Not};
    Stmt s;
    s.kind = K::Unary;
    s.op = one_of(ops);
    s.type = t;
    s.from = t;
    bool move = s.op == Op::Neg || s.op == Op::Abs;
    int a = pick(t, {false, !move});
    s.args = {a};
    s.value = define(t, values_[a].uniform, transcendental(s.op) || (move && values_[a].inexact));
    emit(s);
    return true;
  }

  bool binary() {
    ST t = one_of(kTypes);
    std::vector<Op> ops = {Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne, Op::Min, Op::Max};
    if (is_float(t)) ops.insert(ops.end(), {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Rem, Op::Add, Op::Mul});
    // pow is within 4 ulp on CUDA (powf), more than a GPU comparison allows.
    if (is_float(t) && !o_.bounded_inexact) ops.push_back(Op::Pow);
    if (is_integer(t))
      ops.insert(ops.end(), {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Rem, Op::BitAnd, Op::BitOr, Op::BitXor, Op::Shl,
                             Op::Shr, Op::Add, Op::Mul});
    if (t == ST::boolean) ops.insert(ops.end(), {Op::BitAnd, Op::BitOr, Op::BitXor});
    Stmt s;
    s.kind = K::Binary;
    s.op = one_of(ops);
    s.from = t;
    s.type = ir::is_comparison(s.op) ? ST::boolean : t;
    int a = pick(t, {false, true}), b = pick(t, {false, true});
    s.args = {a, b};
    s.value = define(s.type, values_[a].uniform && values_[b].uniform, s.op == Op::Pow);
    emit(s);
    return true;
  }

  // The same bits as another type of the width: u32, i32 and f32; u64 and i64.
  bool bitcast() {
    bool wide = chance(0.3);
    std::vector<ST> group = wide ? std::vector<ST>{ST::u64, ST::i64} : std::vector<ST>{ST::u32, ST::i32, ST::f32};
    Stmt s;
    s.kind = K::Unary;
    s.op = Op::Bitcast;
    s.from = one_of(group);
    do s.type = one_of(group);
    while (s.type == s.from);
    int a = pick(s.from, {false, true});
    s.args = {a};
    s.value = define(s.type, values_[a].uniform, false);
    emit(s);
    return true;
  }

  // isnan, isinf of a float.
  bool test() {
    Stmt s;
    s.kind = K::Unary;
    s.op = chance(0.5) ? Op::IsNan : Op::IsInf;
    s.from = one_of({ST::f32, ST::f16, ST::bf16});
    s.type = ST::boolean;
    int a = pick(s.from, {false, true});
    s.args = {a};
    s.value = define(ST::boolean, values_[a].uniform, false);
    emit(s);
    return true;
  }

  // A load at any index (mostly a thread's own elements, sometimes past the end), where a mask
  // holds and the index is in bounds; `other` elsewhere.
  bool masked_load() {
    int input = static_cast<int>(below(p_.inputs.size()));
    const TensorDesc& t = p_.inputs[input];
    const ST vt = value_type(t.elem);
    Stmt s;
    s.kind = K::MaskedLoad;
    s.slot = input;
    s.type = vt;
    int index = pick(ST::u32, {false, true}), mask = pick(ST::boolean, {false, true}), other = pick(vt);
    s.args = {index, mask, other};
    const Value &vi = values_[index], &vm = values_[mask], &vo = values_[other];
    s.value = define(vt, vi.uniform && vm.uniform && vo.uniform, vo.inexact);
    emit(s);
    return true;
  }

  bool masked_store() {
    int j = static_cast<int>(below(p_.outputs.size()));
    const TensorDesc& out = p_.outputs[j];
    Stmt s;
    s.kind = K::MaskedStore;
    s.tensor = j;
    s.slot = static_cast<int>(below(out.stride));
    s.type = value_type(out.elem);
    s.args = {pick(s.type, {false, !out.inexact[s.slot]}), pick(ST::boolean, {false, true})};
    emit(s);
    return true;
  }

  // The atomic operation and operands for memory of type t; on a GPU only those whose effect on
  // memory does not depend on the threads' order (integer add, min, max).
  void atomic_operands(Stmt& s, ST t) {
    std::vector<ir::AtomicOp> ops = atomics_on(t);
    if (o_.bounded_inexact) ops.resize(3);  // add, min, max
    s.atomic = one_of(ops);
    s.args.push_back(pick(t, {false, true}));
    if (s.atomic == ir::AtomicOp::CompareExchange) s.args.push_back(pick(t, {false, true}));
  }

  bool device_atomic() {
    Stmt s;
    s.kind = K::DeviceAtomic;
    s.type = p_.acc.elem;
    s.args = {pick(ST::u32, {false, true})};
    atomic_operands(s, s.type);
    // Its old value depends on the order threads reach it: the engine's is fixed, a GPU's is not.
    s.value = define(s.type, false, false, o_.bounded_inexact);
    emit(s);
    return true;
  }

  bool tg_atomic() {
    Stmt s;
    s.kind = K::TgAtomic;
    s.type = o_.bounded_inexact ? one_of({ST::u32, ST::i32}) : one_of({ST::u32, ST::i32, ST::f32});
    s.args = {pick(s.type, {false, true}), pick(ST::u32, {false, true})};
    atomic_operands(s, s.type);
    s.old_value = !o_.bounded_inexact && chance(0.4);
    s.imm = below(4) | (below(40) << 2);
    s.value = define(s.type, false, false);
    emit(s);
    return true;
  }

  bool select() {
    ST t = one_of(kTypes);
    int c = pick(ST::boolean, {false, true}), a = pick(t), b = pick(t);
    Stmt s;
    s.kind = K::Select;
    s.type = t;
    s.args = {c, a, b};
    const Value &va = values_[a], &vb = values_[b];
    s.value = define(t, values_[c].uniform && va.uniform && vb.uniform, va.inexact || vb.inexact);
    emit(s);
    return true;
  }

  bool fma() {
    ST t = one_of({ST::f32, ST::f16, ST::bf16});
    Stmt s;
    s.kind = K::Fma;
    s.type = t;
    bool uniform = true;
    for (int k = 0; k < 3; ++k) {
      s.args.push_back(pick(t, {false, true}));
      uniform &= values_[s.args.back()].uniform;
    }
    s.value = define(t, uniform, false);
    emit(s);
    return true;
  }

  // A thread's own elements of one input, loaded in a row: what vectorize_memory groups.
  bool load_run() {
    int input = static_cast<int>(below(p_.inputs.size()));
    const TensorDesc& t = p_.inputs[input];
    if (t.stride < 2) return false;
    for (uint32_t k = 0; k < t.stride; ++k) {
      Stmt s;
      s.kind = K::Load;
      s.slot = input;
      s.type = t.elem;
      s.type = value_type(t.elem);
      s.mode = Stmt::IndexMode::Own;
      s.imm = k;
      s.value = define(s.type, false, false);
      emit(s);
    }
    return true;
  }

  // `lanes` loads from a base that is a computed multiple of `lanes`: aligned, in bounds.
  bool based_loads() {
    int input = static_cast<int>(below(p_.inputs.size()));
    const TensorDesc& t = p_.inputs[input];
    uint32_t lanes = one_of({2u, 4u, 8u});
    if (p_.count(t) < lanes) return false;
    Stmt base;
    base.kind = K::AlignedBase;
    base.slot = input;
    base.imm = lanes;
    base.args = {pick(ST::u32, {false, true})};
    base.value = define(ST::u32, values_[base.args[0]].uniform, false);
    emit(base);
    for (uint32_t k = 0; k < lanes; ++k) {
      Stmt s;
      s.kind = K::Load;
      s.slot = input;
      s.type = t.elem;
      s.type = value_type(t.elem);
      s.mode = Stmt::IndexMode::Based;
      s.args = {base.value};
      s.lanes = lanes;
      s.imm = chance(0.8) ? k : below(lanes);
      s.value = define(s.type, values_[base.value].uniform, false);
      emit(s);
    }
    return true;
  }

  // Loads of `lanes` consecutive elements from an index expression made of what vectorize_memory's
  // divisibility analysis reads (products, shifts, sums, differences, masks, selects, loop
  // inductions), kept in bounds by a mask that keeps its low bits: the pass may group them only
  // where the expression is provably a multiple of `lanes`.
  bool window_loads() {
    int input = static_cast<int>(below(p_.inputs.size()));
    const TensorDesc& t = p_.inputs[input];
    uint32_t lanes = one_of({2u, 4u, 8u});
    if (p_.count(t) < lanes) return false;
    int e = index_expr(3);
    ++values_[e].uses;
    Stmt base;
    base.kind = K::WindowBase;
    base.slot = input;
    base.imm = lanes;
    base.args = {e};
    base.value = define(ST::u32, values_[e].uniform, false);
    emit(base);
    for (uint32_t k = 0; k < lanes; ++k) {
      if (chance(0.15)) continue;  // a group with a lane missing stays scalar
      Stmt s;
      s.kind = K::Load;
      s.slot = input;
      s.type = t.elem;
      s.type = value_type(t.elem);
      s.mode = Stmt::IndexMode::Based;
      s.args = {base.value};
      s.lanes = lanes;
      s.imm = k;
      s.value = define(s.type, values_[base.value].uniform, false);
      emit(s);
    }
    return true;
  }

  int u32_binary(Op op, int a, int b) {
    ++values_[a].uses;
    ++values_[b].uses;
    Stmt s;
    s.kind = K::Binary;
    s.op = op;
    s.type = s.from = ST::u32;
    s.args = {a, b};
    s.value = define(ST::u32, values_[a].uniform && values_[b].uniform, false);
    emit(s);
    return s.value;
  }

  int u32_constant(uint32_t v) {
    Stmt s;
    s.kind = K::Const;
    s.type = ST::u32;
    s.imm = v;
    s.value = define(ST::u32, true, false);
    emit(s);
    return s.value;
  }

  int index_expr(int depth) {
    if (depth == 0 || chance(0.25)) {
      if (chance(0.3)) return u32_constant(static_cast<uint32_t>(below(64) << below(5)));
      return pick(ST::u32, {false, true});
    }
    switch (below(7)) {
      case 0: return u32_binary(Op::Mul, index_expr(depth - 1), u32_constant(one_of({1u, 2u, 3u, 4u, 6u, 8u, 16u})));
      case 1: return u32_binary(Op::Shl, index_expr(depth - 1), u32_constant(static_cast<uint32_t>(below(5))));
      case 2: return u32_binary(Op::Add, index_expr(depth - 1), index_expr(depth - 1));
      case 3: return u32_binary(Op::Sub, index_expr(depth - 1), index_expr(depth - 1));
      case 4:
        return u32_binary(Op::BitAnd, index_expr(depth - 1),
                          u32_constant(one_of({~1u, ~3u, ~7u, ~15u, 0xfffu, 0xff0u, 6u})));
      case 5: {
        int c = pick(ST::boolean, {false, true}), a = index_expr(depth - 1), b = index_expr(depth - 1);
        ++values_[a].uses;
        ++values_[b].uses;
        Stmt s;
        s.kind = K::Select;
        s.type = ST::u32;
        s.args = {c, a, b};
        s.value = define(ST::u32, values_[c].uniform && values_[a].uniform && values_[b].uniform, false);
        emit(s);
        return s.value;
      }
      default: return u32_binary(Op::BitOr, index_expr(depth - 1), u32_constant(static_cast<uint32_t>(below(8))));
    }
  }

  bool simd() {
    Stmt s;
    s.kind = K::Simd;
    s.op = one_of(
        {Op::SimdSum, Op::SimdMax, Op::SimdMin, Op::ShuffleXor, Op::ShuffleDown, Op::ShuffleXor, Op::ShuffleDown});
    bool shuffle = s.op == Op::ShuffleXor || s.op == Op::ShuffleDown;
    s.type = shuffle ? one_of(kTypes) : one_of(kArithmeticTypes);
    int v = pick(s.type, {false, !shuffle});
    s.args = {v};
    if (shuffle) s.args.push_back(chance(0.6) ? constant(ST::u32) : pick(ST::u32, {false, true}));
    s.value = define(s.type, false, shuffle && values_[v].inexact);
    emit(s);
    return true;
  }

  bool reduce() {
    Stmt s;
    s.kind = K::Reduce;
    s.op = one_of({Op::TgReduceSum, Op::TgReduceMax, Op::TgReduceMin});
    s.type = one_of(kArithmeticTypes);
    s.args = {pick(s.type, {false, true})};
    s.value = define(s.type, true, false);
    emit(s);
    return true;
  }

  bool exchange() {
    Stmt s;
    s.kind = K::Exchange;
    s.type = some_memory_type();  // the array's; the value is its value type
    int v = pick(value_type(s.type));
    s.args = {v};
    s.imm = below(4) | (below(40) << 2);
    s.value = define(value_type(s.type), false, values_[v].inexact);
    emit(s);
    return true;
  }

  std::vector<int> visible_locals() const {
    std::vector<int> out;
    for (const Scope& s : scopes_) out.insert(out.end(), s.locals.begin(), s.locals.end());
    return out;
  }

  bool var_decl() {
    Local l{one_of(kTypes), uniform_here() && chance(0.5), o_.bounded_inexact && chance(0.3)};
    int init = pick(l.type, {l.uniform, !l.inexact});
    Stmt s;
    s.kind = K::VarDecl;
    s.type = l.type;
    s.slot = static_cast<int>(locals_.size());
    s.args = {init};
    locals_.push_back(l);
    scopes_.back().locals.push_back(s.slot);
    emit(s);
    return true;
  }

  bool var_set() {
    std::vector<int> ls = visible_locals();
    if (ls.empty()) return false;
    int slot = one_of(ls);
    const Local l = locals_[slot];
    if (l.uniform && !uniform_here()) return false;  // a uniform local changes only where every thread is
    Stmt s;
    s.kind = K::VarSet;
    s.type = l.type;
    s.slot = slot;
    s.args = {pick(l.type, {l.uniform, !l.inexact})};
    emit(s);
    return true;
  }

  int var_get(int local) {
    Stmt s;
    s.kind = K::VarGet;
    s.slot = local;
    const Local l = locals_[local];
    s.type = l.type;
    s.value = define(l.type, l.uniform, l.inexact);
    emit(s);
    return s.value;
  }

  bool if_stmt() {
    bool want_uniform = uniform_here() && chance(0.5);
    Stmt s;
    s.kind = K::If;
    s.args = {pick(ST::boolean, {want_uniform, true})};
    bool uniform = uniform_here() && values_[s.args[0]].uniform;
    nested(s.body, uniform);
    if (chance(0.5)) nested(s.orelse, uniform);
    emit(std::move(s));
    return true;
  }

  bool for_stmt() {
    bool want_uniform = uniform_here() && chance(0.5);
    Stmt s;
    s.kind = K::For;
    uint64_t start = below(3), bound = start + 1 + below(6);
    s.imm = start | (bound << 8);
    s.args = {chance(0.5) ? constant(ST::u32) : pick(ST::u32, {want_uniform, true})};
    bool uniform = uniform_here() && values_[s.args[0]].uniform;
    if (chance(0.7)) {
      s.step = static_cast<uint32_t>(1 + below(3));
    } else {
      s.step = 0;
      s.args.push_back(pick(ST::u32, {want_uniform, true}));
      uniform &= values_[s.args[1]].uniform;
    }
    s.value = static_cast<int>(values_.size());
    values_.push_back({ST::u32, uniform, false});
    loop_body(s.body, uniform, s.value);
    emit(std::move(s));
    return true;
  }

  // trips = 0; while (trips < min(bound, imm)) { trips += 1; body }.
  bool while_stmt() {
    bool want_uniform = uniform_here() && chance(0.5);
    Stmt s;
    s.kind = K::While;
    s.imm = 1 + below(5);
    s.args = {chance(0.3) ? constant(ST::u32) : pick(ST::u32, {want_uniform, true})};
    loop_body(s.body, uniform_here() && values_[s.args[0]].uniform);
    emit(std::move(s));
    return true;
  }

  // A loop's body. Some loops let threads leave on their own (a break_ or continue_ where threads
  // differ): the whole body is then not uniform (barriers and simdgroup operations there are
  // trace errors, src/ir/uniformity.cpp). The others leave only all together.
  void loop_body(std::vector<Stmt>& into, bool uniform, int induction = -1) {
    const bool own_exits = !uniform || chance(0.3);
    loops_.push_back({own_exits});
    nested(into, uniform && !own_exits, induction);
    loops_.pop_back();
  }

  bool loop_exit(K kind) {
    if (loops_.empty() || (!loops_.back().own_exits && !uniform_here())) return false;
    Stmt s;
    s.kind = kind;
    emit(s);
    return true;
  }

  // if (cond) return_, only at the top level: where threads differ, what follows is not uniform.
  bool return_stmt() {
    if (depth_ > 0 || !loops_.empty() || !chance(0.3)) return false;
    Stmt s;
    s.kind = K::If;
    s.args = {pick(ST::boolean, {false, true})};
    Stmt ret;
    ret.kind = K::Return;
    s.body.push_back(ret);
    ++stmts_;
    if (!uniform_here() || !values_[s.args[0]].uniform) returned_divergently_ = true;
    emit(std::move(s));
    return true;
  }

  bool store(int j, uint32_t slot, bool prefer_unused) {
    const TensorDesc& out = p_.outputs[j];
    slot %= out.stride;
    Stmt s;
    s.kind = K::Store;
    s.type = value_type(out.elem);
    s.tensor = j;
    s.slot = static_cast<int>(slot);
    const Need n{false, !out.inexact[slot]};
    int v = prefer_unused ? unused(s.type, n) : -1;
    if (v >= 0)
      ++values_[v].uses;
    else
      v = pick(s.type, n);
    s.args = {v};
    emit(s);
    return true;
  }

  bool inout_load() {
    Stmt s;
    s.kind = K::InOutLoad;
    s.type = value_type(p_.inout.elem);
    s.slot = static_cast<int>(below(p_.inout.stride));
    s.value = define(s.type, false, p_.inout.inexact[s.slot]);
    emit(s);
    return true;
  }

  bool inout_store() {
    Stmt s;
    s.kind = K::InOutStore;
    s.type = value_type(p_.inout.elem);
    s.slot = static_cast<int>(below(p_.inout.stride));
    s.args = {pick(s.type, {false, !p_.inout.inexact[s.slot]})};
    emit(s);
    return true;
  }

  std::mt19937_64 rng_;
  GenOptions o_;
  Program p_;
  std::vector<Value> values_;
  std::vector<Local> locals_;
  std::vector<Scope> scopes_;
  std::vector<Stmt>* cur_ = nullptr;
  bool uniform_ = true;                // every thread of the threadgroup runs the statements made now
  bool returned_divergently_ = false;  // a return_ some threads took: nothing after is uniform
  struct Loop {
    bool own_exits;  // threads may leave it, or its iteration, on their own
  };
  std::vector<Loop> loops_;  // innermost last
  bool simd_ok_ = true;      // whole simdgroups: tpg % 32 == 0
  int depth_ = 0, stmts_ = 0, leaf_depth_ = 0;
};

}  // namespace

Program generate(uint64_t seed, const GenOptions& opts) {
  return Generator(seed, opts).run();
}

}  // namespace mtile::fuzz
