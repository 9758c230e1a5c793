// The tracing front end: DSL calls append instructions to the kernel being traced.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>

#include "mtile/dsl.hpp"
#include "mtile/dsl_matrix.hpp"

namespace mtile::dsl {
namespace {

struct TraceState {
  ir::Function fn;
  Config config;
  uint32_t serial = 0;
  std::vector<ir::Block*> blocks;  // insertion points, innermost last
  std::vector<int> active_scopes;  // scope serials of the open blocks
  int next_scope = 0;
  std::vector<int> scope_of;            // id -> scope serial that defined it
  std::map<ir::Id, std::string> names;  // named() and named Vars, applied when the trace finishes
  int loops = 0;                        // for_ and while_ bodies being traced
  SourceLoc last_loc;
};

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

thread_local std::vector<TraceState*> g_traces;
std::atomic<uint32_t> g_next_serial{1};

TraceState& cur() {
  if (g_traces.empty()) throw Error("mtile DSL used outside a kernel trace (call it from a kernel body)");
  return *g_traces.back();
}

ir::Id new_id(TraceState& s) {
  ir::Id id = s.fn.fresh_id();
  s.scope_of.resize(id + 1, -1);
  s.scope_of[id] = s.active_scopes.back();
  return id;
}

void check_id(TraceState& s, ir::Id id, uint32_t trace, const char* what) {
  if (id == ir::kNoId) detail::trace_error(fmt::format("{} is used before it was given a value", what));
  if (trace != s.serial) detail::trace_error(fmt::format("{} %{} comes from another kernel's trace", what, id));
  int scope = s.scope_of.at(id);
  for (int open : s.active_scopes)
    if (open == scope) return;
  detail::trace_error(fmt::format("{} %{} is used outside the if_/for_ body that made it", what, id));
}

void check(const Val& v) {
  check_id(cur(), v.id, v.trace, "a value");
}

ir::Inst& append(ir::Inst in) {
  TraceState& s = cur();
  in.loc = s.last_loc;
  s.blocks.back()->insts.push_back(std::move(in));
  return s.blocks.back()->insts.back();
}

// Runs `body` with `block` as the insertion point, in a fresh scope.
template <class F>
void in_block(ir::Block* block, F&& body) {
  TraceState& s = cur();
  s.blocks.push_back(block);
  s.active_scopes.push_back(s.next_scope++);
  body();
  s.active_scopes.pop_back();
  s.blocks.pop_back();
}

Val unary(ir::Op op, const Val& a, bool float_only) {
  check(a);
  if (float_only && !is_float(a.type))
    detail::trace_error(
        fmt::format("{} needs a float operand, got {} (cast it first)", ir::op_name(op), type_name(a.type)));
  return detail::emit(op, a.type, {a});
}

}  // namespace

namespace detail {

void trace_error(const std::string& what) {
  if (g_traces.empty()) throw Error(what);
  TraceState& s = *g_traces.back();
  std::string near = s.last_loc.file ? fmt::format(" (near {})", s.last_loc.str()) : "";
  throw Error(fmt::format("kernel {}<{}>{}: {}", s.fn.name, type_name(s.fn.dtype), near, what));
}

void note_location(SourceLoc loc) {
  if (loc.file) cur().last_loc = loc;
}

Val emit(ir::Op op, ScalarType type, std::initializer_list<Val> args, uint64_t bits) {
  TraceState& s = cur();
  ir::Inst in;
  in.op = op;
  in.type = type;
  in.bits = bits;
  for (const Val& a : args) {
    check(a);
    in.args.push_back(a.id);
  }
  in.result = new_id(s);
  append(std::move(in));
  return Val(s.fn.next_id - 1, type, s.serial);
}

Val binary(ir::Op op, const Val& a, const Val& b) {
  check(a);
  check(b);
  const char* sym = ir::op_name(op);
  if (a.type != b.type)
    trace_error(fmt::format("operator '{}' on {} and {}: operand types differ; convert one with .cast<T>()", sym,
                            type_name(a.type), type_name(b.type)));
  bool bitwise = op == ir::Op::BitAnd || op == ir::Op::BitOr || op == ir::Op::BitXor;
  if ((bitwise || op == ir::Op::Shl || op == ir::Op::Shr) && is_float(a.type))
    trace_error(fmt::format("operator '{}' needs integer or bool operands, got {}", sym, type_name(a.type)));
  if ((op == ir::Op::Shl || op == ir::Op::Shr) && a.type == ScalarType::boolean) trace_error("shift of a bool value");
  if (!bitwise && !ir::is_comparison(op) && op != ir::Op::Min && op != ir::Op::Max && a.type == ScalarType::boolean)
    trace_error(fmt::format("arithmetic '{}' on bool values", sym));
  return emit(op, ir::is_comparison(op) ? ScalarType::boolean : a.type, {a, b});
}

Val literal(ScalarType t, double v) {
  return emit(ir::Op::Const, t, {}, ir::const_bits(t, v));
}

Val literal_like(const Val& ref, double v, bool float_literal) {
  if (ref.type == ScalarType::boolean) trace_error(fmt::format("literal {} next to a bool value", v));
  if (float_literal && is_integer(ref.type))
    trace_error(fmt::format("float literal {} next to a {} value; cast one side", v, type_name(ref.type)));
  if (ref.type == ScalarType::u32 && v < 0) trace_error(fmt::format("negative literal {} next to a u32 value", v));
  return literal(ref.type, v);
}

TraceScope::TraceScope(const std::string& name, ir::Mode mode, ScalarType dtype, const Config& config,
                       const std::vector<std::string>& names, const std::vector<ParamDesc>& params) {
  // Checked before the trace opens, so a throw here leaves no trace behind.
  auto fail = [&](const std::string& what) {
    throw Error(fmt::format("kernel {}<{}>: {}", name, type_name(dtype), what));
  };
  if (names.size() != params.size())
    fail(fmt::format("{} parameter names given for {} parameters", names.size(), params.size()));
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (names[j] == names[i]) fail(fmt::format("parameter name '{}' is used twice", names[i]));
  auto* s = new TraceState;
  s->fn.name = name;
  s->fn.mode = mode;
  s->fn.dtype = dtype;
  s->config = config;
  s->serial = g_next_serial++;
  s->blocks.push_back(&s->fn.body);
  s->active_scopes.push_back(s->next_scope++);
  for (size_t i = 0; i < params.size(); ++i)
    s->fn.params.push_back({names[i], params[i].kind, params[i].elem, params[i].role});
  g_traces.push_back(s);
  state_ = s;
}

TraceScope::~TraceScope() {
  // On an exception the trace is abandoned; finish() has already popped it otherwise. Traces
  // nest (a call traces its callee), so this scope's trace is the innermost one left.
  if (!state_) return;
  auto it = std::find(g_traces.begin(), g_traces.end(), static_cast<TraceState*>(state_));
  if (it != g_traces.end()) g_traces.erase(it);
  delete static_cast<TraceState*>(state_);
  state_ = nullptr;
}

Tensor TraceScope::tensor_arg(int index) const {
  const ir::Param& p = cur().fn.params.at(index);
  Tensor t;
  t.index = index;
  t.elem = p.elem;
  t.role = p.role;
  return t;
}

Constexpr TraceScope::constexpr_arg(int index) const {
  ir::Inst in;
  in.op = ir::Op::ConstexprRef;
  in.type = ScalarType::u32;
  in.param = index;
  TraceState& s = cur();
  in.result = new_id(s);
  append(std::move(in));
  Constexpr c;
  static_cast<Val&>(c) = Val(s.fn.next_id - 1, ScalarType::u32, s.serial);
  return c;
}

Val TraceScope::scalar_arg(int index) const {
  TraceState& s = cur();
  ir::Inst in;
  in.op = ir::Op::ScalarRef;
  in.type = s.fn.params.at(index).elem;
  in.param = index;
  in.result = new_id(s);
  ScalarType t = in.type;
  if (!is_value_type(t) || t == ScalarType::boolean)
    trace_error(fmt::format("scalar parameter '{}' of {}: scalars are u32, i32, u64, i64, f32, f16 or bf16",
                            s.fn.params.at(index).name, type_name(t)));
  append(std::move(in));
  return Val(s.fn.next_id - 1, t, s.serial);
}

ir::Function TraceScope::finish() {
  auto* s = static_cast<TraceState*>(state_);
  ir::Function fn = std::move(s->fn);
  if (!s->names.empty())
    ir::for_each_inst(fn.body, [&](ir::Inst& in) {
      if (auto it = s->names.find(in.result); in.result != ir::kNoId && it != s->names.end()) in.name = it->second;
    });
  g_traces.erase(std::find(g_traces.begin(), g_traces.end(), s));
  delete s;
  state_ = nullptr;
  ir::verify(fn);
  ir::check_uniformity(fn);
  ir::canonicalize(fn);
  return fn;
}

}  // namespace detail

uint32_t config(const std::string& name) {
  TraceState& s = cur();
  auto it = s.config.find(name);
  if (it == s.config.end()) {
    std::vector<std::string> have;
    for (const auto& [k, v] : s.config) have.push_back(k);
    detail::trace_error(fmt::format("config('{}'): the kernel's Config has no '{}' (it has: {})", name, name,
                                    have.empty() ? "nothing" : fmt::format("{}", fmt::join(have, ", "))));
  }
  return it->second;
}

uint32_t config(const std::string& name, uint32_t generic) {
  return cur().config.empty() ? generic : config(name);
}

void resident_threadgroups(uint32_t count) {
  cur().fn.resident = count;
}

struct KernelDef::Impl {
  std::string name;
  ir::Mode mode;
  std::vector<ScalarType> dtypes;
  std::vector<ir::Param> params;
  TraceFn trace;
  uint64_t serial;
};

KernelDef::KernelDef(std::string name, ir::Mode mode, std::vector<ScalarType> dtypes, std::vector<ir::Param> params,
                     TraceFn trace) {
  static std::atomic<uint64_t> next{1};
  if (name.empty()) throw Error("a kernel definition needs a name");
  if (dtypes.empty()) throw Error(fmt::format("kernel {}: defined for no dtype", name));
  if (!trace) throw Error(fmt::format("kernel {}: no trace function", name));
  impl_ = std::make_shared<const Impl>(
      Impl{std::move(name), mode, std::move(dtypes), std::move(params), std::move(trace), next++});
}

static const KernelDef::Impl& impl_of(const std::shared_ptr<const KernelDef::Impl>& p) {
  if (!p) throw Error("an empty kernel definition (KernelDef{}) was used");
  return *p;
}

const std::string& KernelDef::name() const {
  return impl_of(impl_).name;
}
ir::Mode KernelDef::mode() const {
  return impl_of(impl_).mode;
}
const std::vector<ir::Param>& KernelDef::params() const {
  return impl_of(impl_).params;
}
const std::vector<ScalarType>& KernelDef::dtypes() const {
  return impl_of(impl_).dtypes;
}
uint64_t KernelDef::serial() const {
  return impl_of(impl_).serial;
}
bool KernelDef::has_dtype(ScalarType t) const {
  const auto& d = dtypes();
  return std::find(d.begin(), d.end(), t) != d.end();
}

namespace {
// The definitions being traced on this thread, outermost first: a call traces its callee inside
// its caller's trace, so a kernel that calls itself (directly or through others) would recurse
// until the stack overflows.
thread_local std::vector<const KernelDef::Impl*> g_tracing;
}  // namespace

ir::Function KernelDef::trace(ScalarType dtype, const Config& config) const {
  const Impl& k = impl_of(impl_);
  if (!has_dtype(dtype)) {
    std::vector<std::string> have;
    for (ScalarType t : k.dtypes) have.push_back(type_name(t));
    throw Error(fmt::format("kernel {}: no {} variant (dtypes: {})", k.name, type_name(dtype), fmt::join(have, ", ")));
  }
  if (auto open = std::find(g_tracing.begin(), g_tracing.end(), &k); open != g_tracing.end()) {
    std::vector<std::string> chain;
    for (auto it = open; it != g_tracing.end(); ++it) chain.push_back((*it)->name);
    chain.push_back(k.name);
    detail::trace_error(fmt::format("kernel {} calls itself ({}): calls are inlined, so a kernel can't be recursive",
                                    k.name, fmt::join(chain, " -> ")));
  }
  struct Open {  // pops however the trace ends
    explicit Open(const Impl* k) { g_tracing.push_back(k); }
    ~Open() { g_tracing.pop_back(); }
  } open(&k);
  ir::Function f = k.trace(dtype, config);
  bool same = f.params.size() == k.params.size();
  for (size_t i = 0; same && i < f.params.size(); ++i)
    same = f.params[i].name == k.params[i].name && f.params[i].kind == k.params[i].kind &&
           f.params[i].role == k.params[i].role;
  if (!same)
    throw Error(
        fmt::format("kernel {}<{}>: the trace's parameters differ from the definition's", k.name, type_name(dtype)));
  return f;
}

Val Val::cast(ScalarType to) const {
  check(*this);
  if (to == type) return *this;
  if (type == ScalarType::boolean && is_float(to))
    detail::trace_error(fmt::format("cast from bool to {}: select between two constants instead", type_name(to)));
  return detail::emit(ir::Op::Cast, to, {*this});
}

Val lit(float v) {
  return detail::literal(ScalarType::f32, v);
}
Val lit(uint32_t v) {
  return detail::literal(ScalarType::u32, v);
}
Val lit(int32_t v) {
  return detail::literal(ScalarType::i32, v);
}
Val lit(uint64_t v) {  // from the bits: a double would lose the low ones
  return detail::emit(ir::Op::Const, ScalarType::u64, {}, v);
}
Val lit(int64_t v) {
  return detail::emit(ir::Op::Const, ScalarType::i64, {}, static_cast<uint64_t>(v));
}
Val lit(bool v) {
  return detail::literal(ScalarType::boolean, v ? 1 : 0);
}
Val lit(ScalarType t, double v) {
  return detail::literal(t, v);
}

U32::U32(int v) {
  if (v < 0) detail::trace_error(fmt::format("negative value {} where a u32 is expected", v));
  val = lit(static_cast<uint32_t>(v));
}

static Val logical(ir::Op op, const Val& a, const Val& b) {
  if (a.type != ScalarType::boolean || b.type != ScalarType::boolean)
    detail::trace_error(fmt::format("logical {} needs bool operands, got {} and {}", op == ir::Op::BitAnd ? "&&" : "||",
                                    type_name(a.type), type_name(b.type)));
  return detail::binary(op, a, b);
}
Val operator&&(const Val& a, const Val& b) {
  return logical(ir::Op::BitAnd, a, b);
}
Val operator||(const Val& a, const Val& b) {
  return logical(ir::Op::BitOr, a, b);
}
Val operator!(const Val& a) {
  if (is_float(a.type)) detail::trace_error("operator '!' on a float value");
  return unary(ir::Op::Not, a, false);
}
Val operator-(const Val& a) {
  if (a.type == ScalarType::u32 || a.type == ScalarType::boolean)
    detail::trace_error(fmt::format("unary minus on {}", type_name(a.type)));
  return unary(ir::Op::Neg, a, false);
}

Val rsqrt(const Val& a) {
  return unary(ir::Op::Rsqrt, a, true);
}
Val sqrt(const Val& a) {
  return unary(ir::Op::Sqrt, a, true);
}
Val exp(const Val& a) {
  return unary(ir::Op::Exp, a, true);
}
Val exp2(const Val& a) {
  return unary(ir::Op::Exp2, a, true);
}
Val exp2_ftz(const Val& a) {
  return unary(ir::Op::Exp2Ftz, a, true);
}
Val log(const Val& a) {
  return unary(ir::Op::Log, a, true);
}
Val tanh(const Val& a) {
  return unary(ir::Op::Tanh, a, true);
}
Val erf(const Val& a) {
  return unary(ir::Op::Erf, a, true);
}
Val sin(const Val& a) {
  return unary(ir::Op::Sin, a, true);
}
Val cos(const Val& a) {
  return unary(ir::Op::Cos, a, true);
}
Val floor(const Val& a) {
  return unary(ir::Op::Floor, a, true);
}
Val abs(const Val& a) {
  if (a.type == ScalarType::u32) return a;
  if (a.type == ScalarType::boolean) detail::trace_error("abs of a bool value");
  return unary(ir::Op::Abs, a, false);
}
Val min(const Val& a, const Val& b) {
  return detail::binary(ir::Op::Min, a, b);
}
Val max(const Val& a, const Val& b) {
  return detail::binary(ir::Op::Max, a, b);
}
Val fma(const Val& a, const Val& b, const Val& c) {
  if (a.type != b.type || a.type != c.type || !is_float(a.type))
    detail::trace_error(fmt::format("fma needs three operands of one float type, got {}, {}, {}", type_name(a.type),
                                    type_name(b.type), type_name(c.type)));
  return detail::emit(ir::Op::Fma, a.type, {a, b, c});
}
Val pow(const Val& a, const Val& b) {
  if (!is_float(a.type)) detail::trace_error(fmt::format("pow needs float operands, got {}", type_name(a.type)));
  return detail::binary(ir::Op::Pow, a, b);
}
Val sigmoid(const Val& a) {
  return unary(ir::Op::Sigmoid, a, true);
}
Val log1p(const Val& a) {
  return unary(ir::Op::Log1p, a, true);
}
Val expm1(const Val& a) {
  return unary(ir::Op::Expm1, a, true);
}
static Val test(ir::Op op, const Val& a) {
  check(a);
  if (!is_float(a.type))
    detail::trace_error(fmt::format("{} needs a float operand, got {}", ir::op_name(op), type_name(a.type)));
  return detail::emit(op, ScalarType::boolean, {a});
}
Val isnan(const Val& a) {
  return test(ir::Op::IsNan, a);
}
Val isinf(const Val& a) {
  return test(ir::Op::IsInf, a);
}
Val clamp(const Val& v, const Val& lo, const Val& hi) {
  return min(max(v, lo), hi);
}
Val bitcast(const Val& v, ScalarType to) {
  check(v);
  if (!is_value_type(to) || v.type == ScalarType::boolean || to == ScalarType::boolean ||
      storage_bytes(v.type) != storage_bytes(to) || storage_bytes(to) < 4)
    detail::trace_error(
        fmt::format("bitcast from {} to {}: both must be 32-bit (u32, i32, f32) or 64-bit (u64, "
                    "i64) value types of one width",
                    type_name(v.type), type_name(to)));
  if (to == v.type) return v;
  return detail::emit(ir::Op::Bitcast, to, {v});
}

Val select(const Val& cond, const Val& a, const Val& b) {
  if (cond.type != ScalarType::boolean)
    detail::trace_error(fmt::format("select condition must be bool, got {}", type_name(cond.type)));
  if (a.type != b.type)
    detail::trace_error(
        fmt::format("select between {} and {}: both choices need one type", type_name(a.type), type_name(b.type)));
  return detail::emit(ir::Op::Select, a.type, {cond, a, b});
}

static Val builtin(ir::Op op, int axis = 0) {
  if (axis < 0 || axis > 2) detail::trace_error(fmt::format("{} axis {} (must be 0, 1 or 2)", ir::op_name(op), axis));
  return detail::emit(op, ScalarType::u32, {}, static_cast<uint64_t>(axis));
}
Val program_id(int axis) {
  return builtin(ir::Op::ProgramId, axis);
}
Val grid_size(int axis) {
  return builtin(ir::Op::GridSize, axis);
}
Val tid() {
  return builtin(ir::Op::ThreadId);
}
Val lsize() {
  return builtin(ir::Op::ThreadgroupSize);
}
Val simd_lane() {
  return builtin(ir::Op::SimdLane);
}
Val simd_group() {
  return builtin(ir::Op::SimdGroup);
}

TgArray threadgroup_array(ScalarType elem, uint32_t count, SourceLoc loc) {
  detail::note_location(loc);
  if (count == 0) detail::trace_error("threadgroup_array of zero elements");
  if (elem == ScalarType::boolean) detail::trace_error("threadgroup_array of bool: use u32");
  TraceState& s = cur();
  ir::Inst in;
  in.op = ir::Op::TgArrayDecl;
  in.type = elem;
  in.bits = count;
  in.result = new_id(s);
  append(std::move(in));
  TgArray a;
  a.id = s.fn.next_id - 1;
  a.elem = elem;
  return a;
}

TgArray threadgroup_array(ScalarType elem, const Val& count, SourceLoc loc) {
  (void)elem, (void)count;
  detail::note_location(loc);
  detail::trace_error(
      "threadgroup_array sized by a traced value (a Constexpr or a computed Val): its size must be a C++ "
      "number when the kernel is traced. Give the kernel a Config meta-parameter (spec.config = {\"rows\", "
      "rule}) and size it with config(\"rows\"); each launch checks the bytes against the target's");
}

TgArray2D threadgroup_array(ScalarType elem, uint32_t rows, uint32_t cols, SourceLoc loc) {
  detail::note_location(loc);
  uint64_t count = uint64_t{rows} * cols;
  if (count > UINT32_MAX)
    detail::trace_error(fmt::format("threadgroup_array of {} x {} elements: more than 2^32 - 1", rows, cols));
  TgArray2D a;
  a.flat = threadgroup_array(elem, static_cast<uint32_t>(count), loc);
  a.rows = rows;
  a.cols = cols;
  return a;
}

MemRef TgArray2D::operator()(U32 r, U32 c) const {
  return flat[r.val * cols + c.val];
}

MemRef detail::strided_ref(const Tensor& t, std::initializer_list<Val> index, const Val* strides, size_t rank) {
  Val offset;
  size_t k = 0;
  for (const Val& i : index) {
    check(i);
    if (i.type != ScalarType::u32 && i.type != ScalarType::u64)
      detail::trace_error(fmt::format("index {} of strided tensor '{}' is {} (u32 or u64)", k,
                                      cur().fn.params.at(t.index).name, type_name(i.type)));
    Val term = i * strides[k].cast(i.type);
    offset = k == 0 ? term
                    : (offset.type == term.type ? offset : offset.cast(ScalarType::u64)) +
                          (offset.type == term.type ? term : term.cast(ScalarType::u64));
    ++k;
  }
  (void)rank;
  return t[offset];
}

static void check_ref(const MemRef& ref, const char* what) {
  TraceState& s = cur();
  check(ref.index);
  if (ref.index.type != ScalarType::u32 && ref.index.type != ScalarType::u64)
    detail::trace_error(fmt::format("{} index must be u32 or u64, got {}", what, type_name(ref.index.type)));
  if (ref.space == ir::MemSpace::Threadgroup) {
    check_id(s, ref.slot, s.serial, "a threadgroup array");
  } else if (ref.slot < 0 || ref.slot >= static_cast<int>(s.fn.params.size())) {
    detail::trace_error(fmt::format("{} of a tensor that is not a parameter of this kernel", what));
  }
  if (ref.space == ir::MemSpace::Threadgroup && ref.hint != ir::CacheHint::Normal)
    detail::trace_error(
        fmt::format("{} of threadgroup array %{} with the cache hint {}(): cache hints are for "
                    "device memory",
                    what, ref.slot, ir::cache_hint_name(ref.hint)));
}

static std::string mem_name(const MemRef& ref) {
  if (ref.space == ir::MemSpace::Threadgroup) return fmt::format("threadgroup array %{}", ref.slot);
  return fmt::format("'{}'", cur().fn.params.at(ref.slot).name);
}

static Val load_impl(const MemRef& ref, std::vector<Val> extra, SourceLoc loc) {
  detail::note_location(loc);
  check_ref(ref, "load");
  TraceState& s = cur();
  ScalarType t = value_type(ref.elem);
  ir::Inst in;
  in.op = ir::Op::Load;
  in.type = t;
  in.space = ref.space;
  in.param = ref.slot;
  in.args = {ref.index.id};
  in.bits = static_cast<uint64_t>(ref.hint);
  for (const Val& e : extra) {
    check(e);
    in.args.push_back(e.id);
  }
  in.result = new_id(s);
  append(std::move(in));
  return Val(s.fn.next_id - 1, t, s.serial);
}

Val load(const MemRef& ref, SourceLoc loc) {
  return load_impl(ref, {}, loc);
}

Val load(const MemRef& ref, const Val& mask, const Val& other, SourceLoc loc) {
  detail::note_location(loc);
  check(mask);
  check(other);
  if (mask.type != ScalarType::boolean)
    detail::trace_error(fmt::format("masked load: the mask must be bool, got {}", type_name(mask.type)));
  if (other.type != value_type(ref.elem))
    detail::trace_error(fmt::format("masked load of {} memory: the value for masked-off lanes is {}, not {}",
                                    type_name(ref.elem), type_name(other.type), type_name(value_type(ref.elem))));
  return load_impl(ref, {mask, other}, loc);
}

static void store_impl(const MemRef& ref, const Val& v, const Val* mask, SourceLoc loc) {
  detail::note_location(loc);
  check_ref(ref, "store");
  check(v);
  TraceState& s = cur();
  if (ref.space == ir::MemSpace::Device && s.fn.params[ref.slot].role == ir::Role::In)
    detail::trace_error(fmt::format("store to {}, which is an input (declare it Out<T> or InOut<T>)", mem_name(ref)));
  ScalarType t = value_type(ref.elem);
  if (v.type != t)
    detail::trace_error(fmt::format("store of a {} value into {} of {}: cast it to {} with .cast<T>()",
                                    type_name(v.type), mem_name(ref), type_name(ref.elem), type_name(t)));
  ir::Inst in;
  in.op = ir::Op::Store;
  in.type = t;
  in.space = ref.space;
  in.param = ref.slot;
  in.args = {ref.index.id, v.id};
  in.bits = static_cast<uint64_t>(ref.hint);
  if (mask) {
    check(*mask);
    if (mask->type != ScalarType::boolean)
      detail::trace_error(fmt::format("masked store: the mask must be bool, got {}", type_name(mask->type)));
    in.args.push_back(mask->id);
  }
  append(std::move(in));
}

void store(const MemRef& ref, const Val& v, SourceLoc loc) {
  store_impl(ref, v, nullptr, loc);
}
void store(const MemRef& ref, const Val& v, const Val& mask, SourceLoc loc) {
  store_impl(ref, v, &mask, loc);
}

const Val& Vec::operator[](uint32_t k) const {
  if (k >= lanes.size()) detail::trace_error(fmt::format("lane {} of a {}-lane vector", k, lanes.size()));
  return lanes[k];
}

// The checks of load_n and store_n: an index, a tensor of this kernel, a type vectors hold.
static void check_vector_access(const Tensor& t, const Val& base, const char* what, uint32_t n) {
  check_ref({ir::MemSpace::Device, t.index, t.elem, base}, what);
  if (!is_value_type(t.elem) || t.elem == ScalarType::boolean)
    detail::trace_error(
        fmt::format("{}<{}> of '{}', a tensor of {}: vector accesses take tensors of u32, i32, u64, "
                    "i64, f32, f16 or bf16 (load() each element of narrower types)",
                    what, n, cur().fn.params.at(t.index).name, type_name(t.elem)));
}

// Appends `in`, an instruction that defines a vector value (LoadVector, LoadMatrix, Mma), and
// returns its `in.lanes` lanes as values: kernels never hold the vector itself, only its lanes,
// which Extracts read.
static std::vector<Val> append_vector(ir::Inst in) {
  TraceState& s = cur();
  in.result = new_id(s);
  Val whole(in.result, in.type, s.serial);
  const uint32_t lanes = in.lanes;
  append(std::move(in));
  std::vector<Val> out;
  for (uint32_t k = 0; k < lanes; ++k) out.push_back(detail::emit(ir::Op::Extract, whole.type, {whole}, k));
  return out;
}

namespace detail {

Vec load_vector(const Tensor& t, uint32_t n, const Val& base, SourceLoc loc) {
  note_location(loc);
  check_vector_access(t, base, "load_n", n);
  ir::Inst in;
  in.op = ir::Op::LoadVector;
  in.type = t.elem;
  in.space = ir::MemSpace::Device;
  in.param = t.index;
  in.lanes = static_cast<uint8_t>(n);
  in.args = {base.id};
  Vec v;
  v.lanes = append_vector(std::move(in));
  return v;
}

std::vector<Val> load_matrix(const MemRef& ref, uint32_t matrices, bool transposed, SourceLoc loc) {
  note_location(loc);
  check_ref(ref, "load_matrix");
  if (ref.space != ir::MemSpace::Threadgroup || (ref.elem != ScalarType::bf16 && ref.elem != ScalarType::f16) ||
      ref.index.type != ScalarType::u32 || (matrices != 1 && matrices != 2 && matrices != 4))
    detail::trace_error(
        fmt::format("load_matrix of {} from {}: 1, 2 or 4 matrices of a threadgroup array of bf16 or "
                    "f16, with a u32 index",
                    matrices, mem_name(ref)));
  ir::Inst in;
  in.op = ir::Op::LoadMatrix;
  in.type = ref.elem;
  in.space = ir::MemSpace::Threadgroup;
  in.param = ref.slot;
  in.lanes = static_cast<uint8_t>(2 * matrices);
  in.bits = transposed ? 1 : 0;
  in.args = {ref.index.id};
  return append_vector(std::move(in));
}

void store_vector(const Tensor& t, uint32_t n, const Val& base, const std::vector<Val>& values, SourceLoc loc) {
  note_location(loc);
  check_vector_access(t, base, "store_n", n);
  TraceState& s = cur();
  const std::string& name = s.fn.params.at(t.index).name;
  if (s.fn.params[t.index].role == ir::Role::In)
    trace_error(fmt::format("store_n to '{}', which is an input (declare it Out<T> or InOut<T>)", name));
  if (values.size() != n)
    trace_error(fmt::format("store_n<{}> to '{}' with {} values (it stores exactly {})", n, name, values.size(), n));
  ir::Inst in;
  in.op = ir::Op::StoreVector;
  in.type = t.elem;
  in.space = ir::MemSpace::Device;
  in.param = t.index;
  in.lanes = static_cast<uint8_t>(n);
  in.args = {base.id};
  for (size_t k = 0; k < values.size(); ++k) {
    check(values[k]);
    if (values[k].type != t.elem)
      trace_error(fmt::format("store_n to '{}' of {}: value {} is {}; cast it with .cast<T>()", name, type_name(t.elem),
                              k, type_name(values[k].type)));
    in.args.push_back(values[k].id);
  }
  append(std::move(in));
}

}  // namespace detail

static Val atomic(ir::AtomicOp op, const MemRef& ref, std::initializer_list<Val> operands, SourceLoc loc) {
  detail::note_location(loc);
  check_ref(ref, "atomic");
  TraceState& s = cur();
  const char* name = ir::atomic_name(op);
  if (ref.space == ir::MemSpace::Device && s.fn.params[ref.slot].role == ir::Role::In)
    detail::trace_error(
        fmt::format("atomic {} on {}, which is an input (declare it Out<T> or InOut<T>)", name, mem_name(ref)));
  ScalarType t = ref.elem;
  bool ints = t == ScalarType::u32 || t == ScalarType::i32;
  if (!ints && !(t == ScalarType::f32 && op == ir::AtomicOp::Add))
    detail::trace_error(fmt::format("atomic {} on {} of {}: u32 and i32 memory takes every atomic, f32 only add", name,
                                    mem_name(ref), type_name(t)));
  ir::Inst in;
  in.op = ir::Op::Atomic;
  in.type = t;
  in.space = ref.space;
  in.param = ref.slot;
  in.bits = static_cast<uint64_t>(op);
  in.args = {ref.index.id};
  for (const Val& v : operands) {
    check(v);
    if (v.type != t)
      detail::trace_error(
          fmt::format("atomic {} on {} of {}: operand is {}", name, mem_name(ref), type_name(t), type_name(v.type)));
    in.args.push_back(v.id);
  }
  in.result = new_id(s);
  append(std::move(in));
  return Val(s.fn.next_id - 1, t, s.serial);
}
Val atomic_add(const MemRef& ref, const Val& v, SourceLoc loc) {
  return atomic(ir::AtomicOp::Add, ref, {v}, loc);
}
Val atomic_min(const MemRef& ref, const Val& v, SourceLoc loc) {
  return atomic(ir::AtomicOp::Min, ref, {v}, loc);
}
Val atomic_max(const MemRef& ref, const Val& v, SourceLoc loc) {
  return atomic(ir::AtomicOp::Max, ref, {v}, loc);
}
Val atomic_exchange(const MemRef& ref, const Val& v, SourceLoc loc) {
  return atomic(ir::AtomicOp::Exchange, ref, {v}, loc);
}
Val atomic_compare_exchange(const MemRef& ref, const Val& expected, const Val& desired, SourceLoc loc) {
  // Operands in IR order: the value written, then the value compared.
  return atomic(ir::AtomicOp::CompareExchange, ref, {desired, expected}, loc);
}

void barrier(SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::Barrier;
  append(std::move(in));
}

void fence(SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::Fence;
  in.space = ir::MemSpace::Device;
  append(std::move(in));
}

void fence_system(SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::Fence;
  in.space = ir::MemSpace::Device;
  in.bits = 1;  // system scope (docs/IR.md)
  append(std::move(in));
}

void copy_async(const MemRef& dst, const MemRef& src, uint32_t lanes, SourceLoc loc) {
  detail::note_location(loc);
  check_ref(dst, "copy_async");
  check_ref(src, "copy_async");
  if (dst.space != ir::MemSpace::Threadgroup || src.space != ir::MemSpace::Device)
    detail::trace_error(
        fmt::format("copy_async into {} from {}: it copies from a device tensor into a threadgroup "
                    "array (copy_async(tile[j], x[i], lanes))",
                    mem_name(dst), mem_name(src)));
  if (dst.elem != src.elem)
    detail::trace_error(fmt::format("copy_async into {} of {} from {} of {}: the element types must be the same",
                                    mem_name(dst), type_name(dst.elem), mem_name(src), type_name(src.elem)));
  const size_t bytes = size_t{lanes} * storage_bytes(src.elem);
  if (bytes != 4 && bytes != 8 && bytes != 16)
    detail::trace_error(fmt::format("copy_async of {} elements of {} from {}: {} bytes, where it copies 4, 8 or 16",
                                    lanes, type_name(src.elem), mem_name(src), bytes));
  ir::Inst in;
  in.op = ir::Op::CopyAsync;
  in.type = src.elem;
  in.space = ir::MemSpace::Threadgroup;
  in.param = dst.slot;
  in.bits = static_cast<uint64_t>(src.slot);
  in.lanes = static_cast<uint8_t>(lanes);
  in.args = {dst.index.id, src.index.id};
  append(std::move(in));
}

void copy_async_commit(SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::CopyAsyncCommit;
  append(std::move(in));
}

void copy_async_wait(uint32_t pending, SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::CopyAsyncWait;
  in.bits = pending;
  append(std::move(in));
}

Mbarriers mbarriers(uint32_t count, SourceLoc loc) {
  return {threadgroup_array(ScalarType::u64, count, loc)};
}

static void mbarrier_op(ir::Op op, const TgArray& a, std::vector<Val> args, uint64_t bits, SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = op;
  in.space = ir::MemSpace::Threadgroup;
  in.param = a.id;
  in.bits = bits;
  for (Val& v : args) {
    check(v);
    if (v.type != ScalarType::u32)
      detail::trace_error(
          fmt::format("{}: barrier index, count and parity are u32, not {}", ir::op_name(op), type_name(v.type)));
    in.args.push_back(v.id);
  }
  append(std::move(in));
}

void Mbarriers::init(U32 i, U32 count, SourceLoc loc) const {
  mbarrier_op(ir::Op::MbarrierInit, array, {i.val, count.val}, 0, loc);
}
void Mbarriers::arrive(U32 i, SourceLoc loc) const {
  mbarrier_op(ir::Op::MbarrierArrive, array, {i.val}, 0, loc);
}
void Mbarriers::arrive_after_copies(U32 i, SourceLoc loc) const {
  mbarrier_op(ir::Op::MbarrierArrive, array, {i.val}, 1, loc);
}
void Mbarriers::wait(U32 i, U32 parity, SourceLoc loc) const {
  mbarrier_op(ir::Op::MbarrierWait, array, {i.val, parity.val}, 0, loc);
}
void Mbarriers::arrive_expect(U32 i, U32 bytes, SourceLoc loc) const {
  mbarrier_op(ir::Op::MbarrierArrive, array, {i.val, bytes.val}, ir::kArriveExpectBytes, loc);
}

void copy_tile(const MemRef& dst, const TileView& view, const std::vector<Val>& at, const Mbarriers& bars, U32 i,
               SourceLoc loc) {
  detail::note_location(loc);
  check_ref(dst, "copy_tile");
  check_ref(bars.array[i], "copy_tile's mbarrier");
  const Tensor& t = view.tensor;
  const size_t rank = view.box.size();
  if (t.index < 0 || t.index >= static_cast<int>(cur().fn.params.size()))
    detail::trace_error("copy_tile from a tensor that is not a parameter of this kernel");
  auto fail = [&](const std::string& why) {
    detail::trace_error(
        fmt::format("copy_tile into {} from '{}': {}", mem_name(dst), cur().fn.params.at(t.index).name, why));
  };
  if (dst.space != ir::MemSpace::Threadgroup) fail("it copies into a threadgroup array");
  if (dst.elem != t.elem)
    fail(fmt::format("the element types differ ({} and {})", type_name(dst.elem), type_name(t.elem)));
  if (rank < 1 || rank > 3 || view.dims.size() != rank || at.size() != rank || view.strides.size() != rank - 1)
    fail(
        fmt::format("a view of rank 1 to 3 takes as many dims, coordinates and box sizes and one stride fewer; got "
                    "{} box sizes, {} dims, {} coordinates, {} strides",
                    rank, view.dims.size(), at.size(), view.strides.size()));
  if (view.swizzle != 0 && view.swizzle != 128) fail(fmt::format("swizzle {} (0 or 128)", view.swizzle));
  ir::Inst in;
  in.op = ir::Op::CopyTile;
  in.type = t.elem;
  in.space = ir::MemSpace::Threadgroup;
  in.param = dst.slot;
  in.bits = ir::copy_tile_bits(t.index, view.swizzle);
  in.lanes = static_cast<uint8_t>(rank);
  if (i.val.type != ScalarType::u32) fail("the mbarrier index is u32");
  in.args = {dst.index.id, bars.array.id, i.val.id};
  for (const Val& c : at) {
    check(c);
    if (c.type != ScalarType::i32 && c.type != ScalarType::u32)
      fail(fmt::format("coordinates are i32 or u32, not {}", type_name(c.type)));
    in.args.push_back(c.type == ScalarType::i32 ? c.id : c.cast(ScalarType::i32).id);
  }
  for (const U32& d : view.dims) in.args.push_back(d.val.id);
  for (const U32& st : view.strides) in.args.push_back(st.val.id);
  for (uint32_t b : view.box) {
    if (b == 0 || b > 256) fail(fmt::format("box size {} (1 to 256 elements a dim)", b));
    in.args.push_back(lit(b).id);
  }
  append(std::move(in));
}

MmaAcc mma(const MmaA& a, const MmaB& b, const MmaAcc& c, SourceLoc loc) {
  detail::note_location(loc);
  ScalarType t = a.v[0].type;
  if (t != ScalarType::bf16 && t != ScalarType::f16)
    detail::trace_error(
        fmt::format("mma: A's elements are {}; A and B are bf16 or f16 (cast them, or load them "
                    "from bf16 or f16 memory)",
                    type_name(t)));
  ir::Inst in;
  in.op = ir::Op::Mma;
  in.type = ScalarType::f32;
  in.lanes = 4;
  auto add = [&](const Val& v, ScalarType want, const char* what, size_t i) {
    check(v);
    if (v.type != want)
      detail::trace_error(
          fmt::format("mma: {} element {} is {}, not {} (A and B have one type, bf16 or f16; the "
                      "accumulator is f32)",
                      what, i, type_name(v.type), type_name(want)));
    in.args.push_back(v.id);
  };
  for (size_t i = 0; i < a.v.size(); ++i) add(a.v[i], t, "A", i);
  for (size_t i = 0; i < b.v.size(); ++i) add(b.v[i], t, "B", i);
  for (size_t i = 0; i < c.v.size(); ++i) add(c.v[i], ScalarType::f32, "C", i);
  std::vector<Val> d = append_vector(std::move(in));  // D is read through its lanes
  MmaAcc out;
  std::copy(d.begin(), d.end(), out.v.begin());
  return out;
}

namespace {
// mma_async's instruction: A's operands (three u32 of its core matrices, or 8 elements from
// registers) already in `a_args`, B's and C's appended; B's layout rules checked here.
WarpgroupAcc mma_async_inst(const TgArray& tiles, std::vector<ir::Id> a_args, uint32_t swizzle, bool a_registers,
                            const CoreMatrices& b, const WarpgroupAcc& c) {
  const size_t n = c.v.size() * 2;
  if (n < 8 || n > 256 || n % 8 != 0)
    detail::trace_error(
        fmt::format("mma_async: an accumulator of {} elements a thread is 64 x {}; n is a multiple "
                    "of 8 from 8 to 256 (warpgroup_acc_zero(n))",
                    c.v.size(), n));
  if (tiles.elem != ScalarType::bf16 && tiles.elem != ScalarType::f16)
    detail::trace_error(fmt::format("mma_async: A and B come from a threadgroup array of {}; they are bf16 or f16",
                                    type_name(tiles.elem)));
  if (b.kn && b.swizzle != 128)
    detail::trace_error(fmt::format(
        "mma_async: B stored [k][n] is in swizzled 128-byte rows (swizzle 128), not swizzle {}", b.swizzle));
  ir::Inst in;
  in.op = ir::Op::MmaAsync;
  in.type = ScalarType::f32;
  in.space = ir::MemSpace::Threadgroup;
  in.param = tiles.id;
  in.bits = ir::mma_async_bits(static_cast<uint32_t>(n), swizzle, b.kn, a_registers);
  in.lanes = static_cast<uint8_t>(n / 2);
  in.args = std::move(a_args);
  for (const U32* u : {&b.first, &b.k_stride, &b.row_stride}) {
    check(u->val);
    in.args.push_back(u->val.id);
  }
  for (size_t i = 0; i < c.v.size(); ++i) {
    check(c.v[i]);
    if (c.v[i].type != ScalarType::f32)
      detail::trace_error(fmt::format("mma_async: accumulator element {} is {}, not f32", i, type_name(c.v[i].type)));
    in.args.push_back(c.v[i].id);
  }
  return {append_vector(std::move(in))};
}
}  // namespace

WarpgroupAcc mma_async(const TgArray& tiles, const CoreMatrices& a, const CoreMatrices& b, const WarpgroupAcc& c,
                       SourceLoc loc) {
  detail::note_location(loc);
  if (a.swizzle != b.swizzle || (a.swizzle != 0 && a.swizzle != 128))
    detail::trace_error(
        fmt::format("mma_async: A's swizzle is {} and B's {}; both 0 or both 128", a.swizzle, b.swizzle));
  if (a.kn) detail::trace_error("mma_async: A is stored [m][k]; only B may be stored [k][n] (CoreMatrices::kn)");
  std::vector<ir::Id> args;
  for (const U32* u : {&a.first, &a.k_stride, &a.row_stride}) {
    check(u->val);
    args.push_back(u->val.id);
  }
  return mma_async_inst(tiles, std::move(args), a.swizzle, false, b, c);
}

WarpgroupAcc mma_async(const TgArray& tiles, const MmaA& a, const CoreMatrices& b, const WarpgroupAcc& c,
                       SourceLoc loc) {
  detail::note_location(loc);
  std::vector<ir::Id> args;
  for (size_t i = 0; i < a.v.size(); ++i) {
    check(a.v[i]);
    if (a.v[i].type != tiles.elem)
      detail::trace_error(fmt::format("mma_async: A's element {} from registers is {}; B's threadgroup array is {}", i,
                                      type_name(a.v[i].type), type_name(tiles.elem)));
    args.push_back(a.v[i].id);
  }
  return mma_async_inst(tiles, std::move(args), b.swizzle, true, b, c);
}

void mma_fence(SourceLoc loc) {
  detail::note_location(loc);
  ir::Inst in;
  in.op = ir::Op::MmaFence;
  append(std::move(in));
}

WarpgroupAcc mma_wait(uint32_t pending, const WarpgroupAcc& acc, SourceLoc loc) {
  detail::note_location(loc);
  if (acc.v.empty() || acc.v.size() > 128)
    detail::trace_error(fmt::format("mma_wait: an accumulator of {} elements (1 to 128)", acc.v.size()));
  ir::Inst in;
  in.op = ir::Op::MmaWait;
  in.type = ScalarType::f32;
  in.bits = pending;
  in.lanes = static_cast<uint8_t>(acc.v.size());
  for (const Val& v : acc.v) {
    check(v);
    if (v.type != ScalarType::f32)
      detail::trace_error(fmt::format("mma_wait: accumulator elements are f32, not {}", type_name(v.type)));
    in.args.push_back(v.id);
  }
  return {append_vector(std::move(in))};
}

static Val simd_op(ir::Op op, const Val& v) {
  check(v);
  if (v.type == ScalarType::boolean) detail::trace_error(fmt::format("{} of a bool value", ir::op_name(op)));
  return detail::emit(op, v.type, {v});
}
Val simd_sum(const Val& v) {
  return simd_op(ir::Op::SimdSum, v);
}
Val simd_max(const Val& v) {
  return simd_op(ir::Op::SimdMax, v);
}
Val simd_min(const Val& v) {
  return simd_op(ir::Op::SimdMin, v);
}
Val simd_shuffle_xor(const Val& v, U32 lane_mask) {
  return detail::emit(ir::Op::ShuffleXor, v.type, {v, lane_mask.val});
}
Val simd_shuffle_down(const Val& v, U32 delta) {
  return detail::emit(ir::Op::ShuffleDown, v.type, {v, delta.val});
}
Val reduce_sum(const Val& v, SourceLoc loc) {
  detail::note_location(loc);
  return simd_op(ir::Op::TgReduceSum, v);
}
Val reduce_max(const Val& v, SourceLoc loc) {
  detail::note_location(loc);
  return simd_op(ir::Op::TgReduceMax, v);
}
Val reduce_min(const Val& v, SourceLoc loc) {
  detail::note_location(loc);
  return simd_op(ir::Op::TgReduceMin, v);
}

Val named(const std::string& name, const Val& v) {
  check(v);
  if (!is_identifier(name))
    detail::trace_error(fmt::format("named(\"{}\"): a name must be a C identifier (letters, digits, _)", name));
  cur().names[v.id] = name;
  return v;
}

Var::Var(const std::string& name, const Val& init, SourceLoc loc) : Var(init, loc) {
  if (!is_identifier(name))
    detail::trace_error(fmt::format("Var \"{}\": a name must be a C identifier (letters, digits, _)", name));
  cur().names[id_] = name;
}

Var::Var(const Val& init, SourceLoc loc) {
  detail::note_location(loc);
  check(init);
  TraceState& s = cur();
  ir::Inst in;
  in.op = ir::Op::LocalDecl;
  in.type = init.type;
  in.args = {init.id};
  in.result = new_id(s);
  id_ = in.result;
  type_ = init.type;
  trace_ = s.serial;
  append(std::move(in));
}

Var& Var::operator=(const Val& v) {
  TraceState& s = cur();
  check_id(s, id_, trace_, "a Var");
  check(v);
  if (v.type != type_)
    detail::trace_error(
        fmt::format("assigning a {} value to a {} Var: cast it first", type_name(v.type), type_name(type_)));
  ir::Inst in;
  in.op = ir::Op::LocalSet;
  in.type = type_;
  in.param = id_;
  in.args = {v.id};
  append(std::move(in));
  return *this;
}

Val Var::get() const {
  TraceState& s = cur();
  check_id(s, id_, trace_, "a Var");
  ir::Inst in;
  in.op = ir::Op::LocalGet;
  in.type = type_;
  in.param = id_;
  in.result = new_id(s);
  append(std::move(in));
  return Val(s.fn.next_id - 1, type_, s.serial);
}

void if_(const Val& cond, const std::function<void()>& then_body, SourceLoc loc) {
  if_(cond, then_body, {}, loc);
}

void if_(const Val& cond, const std::function<void()>& then_body, const std::function<void()>& else_body,
         SourceLoc loc) {
  detail::note_location(loc);
  check(cond);
  if (cond.type != ScalarType::boolean)
    detail::trace_error(fmt::format("if_ condition must be bool, got {} (compare it first)", type_name(cond.type)));
  ir::Inst in;
  in.op = ir::Op::If;
  in.args = {cond.id};
  in.blocks.resize(2);
  ir::Inst& placed = append(std::move(in));
  in_block(&placed.blocks[0], [&] { then_body(); });
  if (else_body) in_block(&placed.blocks[1], [&] { else_body(); });
}

void for_(U32 start, U32 end, U32 step, const std::function<void(Val)>& body, SourceLoc loc) {
  detail::note_location(loc);
  for (const Val* v : {&start.val, &end.val, &step.val}) {
    check(*v);
    if (v->type != ScalarType::u32)
      detail::trace_error(fmt::format("for_ bounds must be u32, got {}", type_name(v->type)));
  }
  TraceState& s = cur();
  ir::Inst in;
  in.op = ir::Op::For;
  in.type = ScalarType::u32;
  in.args = {start.val.id, end.val.id, step.val.id};
  in.blocks.resize(1);
  ir::Inst& placed = append(std::move(in));
  in_block(&placed.blocks[0], [&] {
    placed.result = new_id(s);  // the induction value belongs to the body's scope
    ++s.loops;
    body(Val(placed.result, ScalarType::u32, s.serial));
    --s.loops;
  });
}

void while_(const std::function<Val()>& cond, const std::function<void()>& body, SourceLoc loc) {
  detail::note_location(loc);
  TraceState& s = cur();
  ir::Inst in;
  in.op = ir::Op::Loop;
  in.blocks.resize(1);
  ir::Inst& placed = append(std::move(in));
  in_block(&placed.blocks[0], [&] {
    ++s.loops;
    Val c = cond();
    check(c);
    if (c.type != ScalarType::boolean)
      detail::trace_error(fmt::format("while_ condition must be bool, got {}", type_name(c.type)));
    if_(
        !c, [&] { break_(loc); }, loc);
    body();
    --s.loops;
  });
}

static void exit(ir::Op op, const char* what, SourceLoc loc) {
  detail::note_location(loc);
  if (op != ir::Op::Return && cur().loops == 0) detail::trace_error(fmt::format("{} outside a for_ or while_", what));
  ir::Inst in;
  in.op = op;
  append(std::move(in));
}
void break_(SourceLoc loc) {
  exit(ir::Op::Break, "break_", loc);
}
void continue_(SourceLoc loc) {
  exit(ir::Op::Continue, "continue_", loc);
}
void return_(SourceLoc loc) {
  exit(ir::Op::Return, "return_", loc);
}

Val call(const KernelDef& callee, std::initializer_list<CallArg> args, SourceLoc loc) {
  detail::note_location(loc);
  TraceState& s = cur();
  ScalarType dt = s.fn.dtype;
  // A callee has its own meta-parameters (none today): it is traced with an empty Config.
  auto fn = std::make_shared<const ir::Function>(callee.trace(callee.has_dtype(dt) ? dt : callee.dtypes().at(0)));
  int out = fn->output_param();
  if (out < 0)
    detail::trace_error(
        fmt::format("call of {}: a callee needs exactly one Out/InOut tensor (its result)", callee.name()));
  int stores = 0;
  ir::for_each_inst(fn->body, [&](const ir::Inst& in) {
    if (in.op == ir::Op::Store && in.space == ir::MemSpace::Device && in.param == out) ++stores;
  });
  if (stores != 1)
    detail::trace_error(fmt::format("call of {}: its output '{}' must be stored exactly once, found {} stores",
                                    callee.name(), fn->params[out].name, stores));
  ir::Inst in;
  in.op = ir::Op::Call;
  in.type = fn->params[out].elem;
  size_t want = fn->params.size() - 1;
  if (args.size() != want)
    detail::trace_error(fmt::format("call of {}: {} arguments given, it takes {} (its parameters but '{}')",
                                    callee.name(), args.size(), want, fn->params[out].name));
  size_t k = 0;
  for (size_t i = 0; i < fn->params.size(); ++i) {
    if (static_cast<int>(i) == out) continue;
    const ir::Param& p = fn->params[i];
    const CallArg& a = args.begin()[k++];
    ir::CallArg ca;
    if (a.tensor) {
      if (p.kind != ir::ParamKind::Tensor)
        detail::trace_error(
            fmt::format("call of {}: parameter '{}' is a constexpr, got a tensor", callee.name(), p.name));
      if (a.tensor->elem != p.elem)
        detail::trace_error(fmt::format("call of {}: tensor for '{}' holds {}, the callee expects {}", callee.name(),
                                        p.name, type_name(a.tensor->elem), type_name(p.elem)));
      ca.kind = ir::CallArg::Kind::Tensor;
      ca.param = a.tensor->index;
    } else {
      check(a.value);
      ScalarType want_t = p.kind == ir::ParamKind::Constexpr ? ScalarType::u32 : p.elem;
      if (a.value.type != want_t)
        detail::trace_error(fmt::format("call of {}: value for '{}' is {}, the callee expects {}", callee.name(),
                                        p.name, type_name(a.value.type), type_name(want_t)));
      ca.value = a.value.id;
    }
    in.call_args.push_back(ca);
  }
  in.callee = std::move(fn);
  in.result = new_id(s);
  ScalarType t = in.type;
  append(std::move(in));
  return Val(s.fn.next_id - 1, t, s.serial);
}

}  // namespace mtile::dsl

namespace mtile::dsl {

uint32_t type_code(ScalarType t) {
  return static_cast<uint32_t>(t);
}

ScalarType config_type(const std::string& name) {
  uint32_t code = config(name);
  if (code >= kScalarTypeCount) {
    std::vector<std::string> codes;
    for (uint32_t c = 0; c < kScalarTypeCount; ++c)
      codes.push_back(fmt::format("{} = {}", type_name(static_cast<ScalarType>(c)), c));
    detail::trace_error(
        fmt::format("config('{}') = {} is no type code (codes: {})", name, code, fmt::join(codes, ", ")));
  }
  return static_cast<ScalarType>(code);
}

KernelDef define_two_type_kernel(std::string name, ir::Mode mode, std::vector<std::string> names,
                                 std::string out_config, std::vector<TypePair> pairs) {
  if (pairs.empty()) throw Error(fmt::format("kernel {}: define_two_type_kernel with no type pairs", name));
  std::vector<ScalarType> inputs;
  for (const TypePair& p : pairs)
    if (std::find(inputs.begin(), inputs.end(), p.in) == inputs.end()) inputs.push_back(p.in);
  std::vector<ir::Param> params = pairs[0].params(names);
  auto trace = [=](ScalarType in, const Config& config) {
    auto it = config.find(out_config);
    std::vector<std::string> outs;
    for (const TypePair& p : pairs) {
      if (p.in != in) continue;
      if (it == config.end() || p.out == static_cast<ScalarType>(it->second)) return p.trace(name, mode, names, config);
      outs.push_back(type_name(p.out));
    }
    std::string code = it->second < kScalarTypeCount ? type_name(static_cast<ScalarType>(it->second))
                                                     : fmt::format("code {}", it->second);
    throw Error(fmt::format("kernel {}<{}>: no variant with {} = {} (for {} it has: {})", name, type_name(in),
                            out_config, code, type_name(in), fmt::join(outs, ", ")));
  };
  return KernelDef(std::move(name), mode, std::move(inputs), std::move(params), trace);
}

}  // namespace mtile::dsl
