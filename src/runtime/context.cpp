// The Context: traces, lowered IR, executables and launch plans, each in a bounded once-per-key
// cache; and the checked launch.
#include <fmt/format.h>

#include <cmath>
#include <thread>
#include <tuple>

#include "ir/slots.hpp"
#include "passes/divisibility.hpp"
#include "passes/pipeline.hpp"
#include "runtime/once_cache.hpp"

namespace mtile {
namespace {

using Bake = std::map<std::string, uint32_t>;
using TraceKey = std::tuple<uint64_t, ScalarType, Config>;  // definition serial
using Wide = std::set<std::string>;
// Name, traced IR's hash, dtype, target, baked constexprs, wide tensors, threads per threadgroup,
// may_alias pairs.
using LowerKey = std::tuple<std::string, uint64_t, ScalarType, std::string, Bake, Wide, uint32_t,
                            std::vector<std::pair<std::string, std::string>>>;
using CompiledKey = std::pair<uint64_t, uint64_t>;  // backend, lowered hash

struct PlanKey {
  uint64_t backend, kernel;
  ScalarType dtype;
  std::vector<uint32_t> shape;  // in the spec's dims order
  Config config;
  std::array<uint32_t, 4> geometry;  // override, or zeros
  bool bake;
  auto tie() const { return std::tie(backend, kernel, dtype, shape, config, geometry, bake); }
  bool operator<(const PlanKey& o) const { return tie() < o.tie(); }
};

bool uses_simdgroups(const ir::Function& f) {
  bool found = false;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { found |= ir::op_kind(in.op) == ir::OpKind::Simd; });
  return found;
}

uint64_t threadgroup_bytes(const ir::Function& f) {
  uint64_t bytes = 0;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if (in.op == ir::Op::TgArrayDecl) bytes += in.bits * storage_bytes(in.type);
  });
  return bytes;
}

// The alignment each tensor's address needs: its widest access, at least one element.
std::vector<uint64_t> alignments(const ir::Function& f) {
  std::vector<uint64_t> a(f.params.size(), 1);
  for (size_t i = 0; i < f.params.size(); ++i)
    if (f.params[i].kind == ir::ParamKind::Tensor) a[i] = storage_bytes(f.params[i].elem);
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if ((in.op == ir::Op::LoadVector || in.op == ir::Op::StoreVector) && in.space == ir::MemSpace::Device)
      a[in.param] = std::max<uint64_t>(a[in.param], in.lanes * storage_bytes(in.type));
    if (in.op == ir::Op::CopyAsync)  // cp.async reads its source 4, 8 or 16 bytes at a time
      a[ir::copy_source(in)] = std::max<uint64_t>(a[ir::copy_source(in)], in.lanes * storage_bytes(in.type));
    if (in.op == ir::Op::CopyTile)  // a tensor map's address is a multiple of 16 bytes
      a[ir::copy_source(in)] = std::max<uint64_t>(a[ir::copy_source(in)], 16);
  });
  return a;
}

struct Plan : LaunchPlan {
  std::vector<uint64_t> align;                       // per parameter
  std::vector<size_t> scalars;                       // indices of scalar parameters
  std::vector<std::pair<size_t, size_t>> may_alias;  // parameter indices of KernelSpec::may_alias
};

// The bytes of `b` a launch of `plan` touches: [first, last) of its used elements.
std::pair<uint64_t, uint64_t> used_range(const Plan& plan, size_t param, const Buffer& b) {
  return {b.handle, b.handle + plan.elements[param] * storage_bytes(b.elem)};
}

// An output whose memory overlaps another tensor's is refused, unless the kernel declares the pair
// in place (KernelSpec::may_alias) and they are exactly the same range: a kernel's accesses to
// different tensors may be reordered and are declared not to alias (docs/IR.md).
void check_overlaps(const Plan& plan, const std::vector<Buffer*>& tensors) {
  const auto& params = plan.params();
  auto is_tensor = [&](size_t i) { return params[i].kind == ir::ParamKind::Tensor; };
  for (size_t i = 0; i < params.size(); ++i) {
    if (!is_tensor(i) || params[i].role == ir::Role::In) continue;
    auto [lo, hi] = used_range(plan, i, *tensors[i]);
    for (size_t j = 0; j < params.size(); ++j) {
      // Each pair once: an output against every input, and against the outputs after it.
      if (j == i || !is_tensor(j) || (params[j].role != ir::Role::In && j < i)) continue;
      auto [olo, ohi] = used_range(plan, j, *tensors[j]);
      if (lo == hi || olo == ohi || hi <= olo || ohi <= lo) continue;
      bool declared = false;
      for (const auto& [a, b] : plan.may_alias) declared |= (a == i && b == j) || (a == j && b == i);
      if (declared && lo == olo && hi == ohi) continue;
      const std::string& kernel = plan.kernel.name();
      throw Error(fmt::format(
          "kernel {}: output '{}' [0x{:x}, 0x{:x}) overlaps '{}' [0x{:x}, 0x{:x}): {}. Nothing was launched.", kernel,
          params[i].name, lo, hi, params[j].name, olo, ohi,
          declared ? fmt::format("the kernel may take them as one buffer (may_alias), but not partly overlapping")
                   : fmt::format("its tensors must not share memory unless its spec declares the pair in place "
                                 "(KernelSpec::may_alias; {} declares {})",
                                 kernel, plan.may_alias.empty() ? "none" : "others")));
    }
  }
}

// The bits a scalar parameter of type `t` is passed with: floats as f32 (f16/bf16 rounded to their
// type first), integers exactly or not at all.
uint64_t scalar_bits(const std::string& kernel, const ir::Param& p, double v) {
  ScalarType t = p.elem;
  if (is_float(t)) return float_bits(round_to(t, static_cast<float>(v)));
  auto refuse = [&] {
    throw Error(fmt::format("kernel {}: scalar '{}' is {}, and {} is not one", kernel, p.name, type_name(t), v));
  };
  if (v != std::floor(v)) refuse();
  switch (t) {
    case ScalarType::u32:
      if (v < 0 || v > 4294967295.0) refuse();
      return static_cast<uint32_t>(v);
    case ScalarType::i32:
      if (v < -2147483648.0 || v > 2147483647.0) refuse();
      return static_cast<uint32_t>(static_cast<int32_t>(v));
    case ScalarType::u64:
      if (v < 0 || v >= 18446744073709551616.0) refuse();
      return static_cast<uint64_t>(v);
    case ScalarType::i64:
      if (v < -9223372036854775808.0 || v >= 9223372036854775808.0) refuse();
      return static_cast<uint64_t>(static_cast<int64_t>(v));
    default: refuse();
  }
  return 0;
}

}  // namespace

struct Context::Impl {
  explicit Impl(const Limits& l) : traced(l.traced), lowered(l.lowered), compiled(l.compiled), plans(l.plans) {}
  OnceCache<TraceKey, const Lowered> traced;
  OnceCache<LowerKey, const Lowered> lowered;
  OnceCache<CompiledKey, Executable> compiled;
  OnceCache<PlanKey, const Plan> plans;
  std::mutex backends_mu;
  std::map<std::string, std::unique_ptr<Backend>> backends;
};

Context::Context() : Context(Limits{}) {}
Context::Context(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}
Context::~Context() = default;

Context& Context::global() {
  static Context* ctx = new Context();  // never destroyed: backends outlive static destruction order
  return *ctx;
}

Backend& Context::backend(const std::string& name) {
  std::string key = name.empty() ? default_backend_name() : name;
  std::lock_guard lock(impl_->backends_mu);
  auto& slot = impl_->backends[key];
  if (!slot) {
    try {
      slot = make_backend(key);
    } catch (...) {
      impl_->backends.erase(key);
      throw;
    }
  }
  return *slot;
}

namespace {

// The traced IR of one (definition, dtype, Config), with its structural hash.
std::shared_ptr<const Lowered> trace_entry(OnceCache<TraceKey, const Lowered>& cache, const Kernel& k, ScalarType dtype,
                                           const Config& config) {
  return cache.get({k->def.serial(), dtype, config}, [&] {
    auto out = std::make_shared<Lowered>();
    out->fn = k->def.trace(dtype, config);
    out->hash = ir::structural_hash(out->fn);
    return out;
  });
}

}  // namespace

std::shared_ptr<const ir::Function> Context::traced(const Kernel& k, ScalarType dtype, const Config& config) {
  auto t = trace_entry(impl_->traced, k, dtype, config);
  return std::shared_ptr<const ir::Function>(t, &t->fn);
}

std::shared_ptr<const Lowered> Context::lowered(const Kernel& k, ScalarType dtype, const Config& config,
                                                const Target& target, const Bake& bake, const Wide& wide,
                                                uint32_t tpg) {
  auto t = trace_entry(impl_->traced, k, dtype, config);
  // Identity is the definition itself: its name and its traced IR (by hash), never an address.
  return impl_->lowered.get({k.name(), t->hash, dtype, target.pipeline_key(), bake, wide, tpg, k->may_alias}, [&] {
    auto out = std::make_shared<Lowered>();
    passes::PipelineOptions opts;
    opts.bake = bake;
    opts.wide = wide;
    opts.tpg = tpg;
    ir::Function traced = t->fn;
    mark_may_alias(k.spec(), traced);
    out->fn = passes::run_pipeline(traced, target, opts);
    out->hash = ir::structural_hash(out->fn);
    return out;
  });
}

std::shared_ptr<Executable> Context::compiled(Backend& backend, const Lowered& lowered) {
  return impl_->compiled.get({backend.instance(), lowered.hash}, [&] { return backend.prepare(lowered.fn); });
}

std::shared_ptr<const LaunchPlan> Context::plan(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                                                const LaunchOptions& opts) {
  if (!k) throw Error("launch of an empty Kernel handle");
  const KernelSpec& spec = k.spec();
  PlanKey key{backend.instance(), k.serial(), dtype, {}, opts.config, {0, 0, 0, 0}, opts.bake_constexprs};
  if (shape.size() != spec.dims.size()) validate_shape(spec, shape);
  for (const std::string& d : spec.dims) {
    auto it = shape.find(d);
    if (it == shape.end()) validate_shape(spec, shape);  // throws the precise message
    key.shape.push_back(it->second);
  }
  if (opts.geometry)
    key.geometry = {opts.geometry->grid[0], opts.geometry->grid[1], opts.geometry->grid[2], opts.geometry->tpg};
  return impl_->plans.get(key, [&] {
    if (!spec.has_dtype(dtype)) k->def.trace(dtype);  // throws: no such variant
    const Target& target = backend.target();
    auto p = std::make_shared<Plan>();
    p->kernel = k;
    p->dtype = dtype;
    p->shape = shape;
    p->resolved = resolve(spec, shape, target, opts.config, opts.geometry, dtype);
    check_contract(spec, shape, p->resolved);  // before anything is traced, compiled or allocated
    // load_n/store_n need a base that is a multiple of N; with this launch's constexprs known, every
    // backend refuses the same launches (Metal's scalar accesses would not need it).
    if (auto bad = passes::misaligned_vector_accesses(*traced(k, dtype, p->resolved.config), p->resolved.constexprs);
        !bad.empty())
      contract_violation(spec, shape, bad);
    // Tensors past 2^31 elements get 64-bit offsets; their launches always bake constexprs, so
    // that widen_indices can bound the loops that index them.
    std::set<std::string> wide = wide_tensors(p->resolved);
    bool bake = opts.bake_constexprs || !wide.empty();
    Bake baked = bake ? p->resolved.constexprs : Bake{};
    if (wide.empty())
      for (const std::string& c : spec.launch_constexprs) baked.erase(c);
    p->lowered = lowered(k, dtype, p->resolved.config, target, baked, wide, p->resolved.geometry.tpg);
    const ir::Function& fn = p->lowered->fn;
    const Geometry& g = p->resolved.geometry;
    std::vector<std::string> broken;
    if (uses_simdgroups(fn) && g.tpg % target.simd_width != 0)
      broken.push_back(
          fmt::format("tpg % simd_width == 0, as its simdgroup operations need whole simdgroups (tpg = {}, "
                      "simd_width = {})",
                      g.tpg, target.simd_width));
    if (uint64_t bytes = threadgroup_bytes(fn); bytes > target.shared_memory_per_threadgroup)
      broken.push_back(fmt::format("threadgroup memory <= shared_memory ({} bytes, shared_memory = {})", bytes,
                                   target.shared_memory_per_threadgroup));
    if (!broken.empty()) contract_violation(spec, shape, broken);
    p->align = alignments(fn);
    p->values.assign(fn.params.size(), 0);
    p->elements.assign(fn.params.size(), 0);
    for (size_t i = 0; i < fn.params.size(); ++i) {
      const ir::Param& prm = fn.params[i];
      if (prm.kind == ir::ParamKind::Constexpr)
        p->values[i] = p->resolved.constexprs.at(prm.name);
      else if (prm.kind == ir::ParamKind::Tensor)
        p->elements[i] = p->resolved.elements.at(prm.name);
      else
        p->scalars.push_back(i);
    }
    for (const auto& [a, b] : spec.may_alias)
      p->may_alias.push_back({static_cast<size_t>(fn.param_index(a)), static_cast<size_t>(fn.param_index(b))});
    p->exe = compiled(backend, *p->lowered);
    return p;
  });
}

void Context::run(Backend& backend, const LaunchPlan& lp, const std::vector<Buffer*>& tensors,
                  const LaunchOptions& opts) {
  const auto& plan = static_cast<const Plan&>(lp);
  const auto& params = plan.params();
  const std::string& name = plan.kernel.name();
  if (tensors.size() != params.size())
    throw Error(fmt::format("kernel {}: {} buffers given for {} parameters (pass nullptr for the others)", name,
                            tensors.size(), params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor) continue;
    const Buffer* b = tensors[i];
    if (!b) throw Error(fmt::format("kernel {}: no buffer for tensor '{}'", name, p.name));
    if (std::string why = backend.why_unusable(*b); !why.empty())  // the message is made only on failure
      backend.check_usable(*b, fmt::format("kernel {}: buffer for '{}'", name, p.name));
    if (b->elem != p.elem)
      throw Error(fmt::format("kernel {}: buffer for '{}' holds {}, the kernel expects {}", name, p.name,
                              type_name(b->elem), type_name(p.elem)));
    if (b->handle % plan.align[i] != 0)
      throw Error(fmt::format("kernel {}: buffer for '{}' at 0x{:x} is not {}-byte aligned, as its widest access needs",
                              name, p.name, b->handle, plan.align[i]));
    if (b->count < plan.elements[i])
      throw Error(fmt::format("kernel {}: buffer for '{}' has {} elements, shape {} needs {}", name, p.name, b->count,
                              shape_text(plan.shape), plan.elements[i]));
  }
  check_overlaps(plan, tensors);
  if (opts.stream && opts.stream->owner != &backend)
    throw Error(fmt::format("kernel {}: the stream belongs to another backend", name));
  if (plan.scalars.empty()) {
    backend.run(*plan.exe, plan.geometry(), tensors, plan.values, opts.stream);
    return;
  }
  std::vector<uint64_t> values = plan.values;
  for (size_t i : plan.scalars) {
    auto it = opts.scalars.find(params[i].name);
    if (it == opts.scalars.end())
      throw Error(fmt::format("kernel {}: no value for scalar '{}' (LaunchOptions::scalars)", name, params[i].name));
    values[i] = scalar_bits(name, params[i], it->second);
    // A collective kernel's rank indexes its symmetric memory: out of range, it reads past it.
    if (params[i].name == "rank" && !plan.kernel->symmetric.empty() && it->second >= plan.shape.at("ranks"))
      throw Error(
          fmt::format("kernel {}: scalar 'rank' is {}, outside 0..ranks - 1 = {} (shape {}). Nothing was launched",
                      name, it->second, plan.shape.at("ranks") - 1, shape_text(plan.shape)));
  }
  for (const auto& [s, v] : opts.scalars) {
    bool known = false;
    for (size_t i : plan.scalars) known |= params[i].name == s;
    if (!known) throw Error(fmt::format("kernel {}: it has no scalar parameter '{}'", name, s));
  }
  backend.run(*plan.exe, plan.geometry(), tensors, values, opts.stream);
}

void Context::launch(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                     const std::vector<Buffer*>& tensors, const LaunchOptions& opts) {
  auto p = plan(backend, k, dtype, shape, opts);
  run(backend, *p, tensors, opts);
}

Context::Counts Context::counts() const {
  return {impl_->traced.counts(), impl_->lowered.counts(), impl_->compiled.counts(), impl_->plans.counts()};
}

void Context::clear() {
  impl_->plans.clear();
  impl_->compiled.clear();
  impl_->lowered.clear();
  impl_->traced.clear();
}

void run_collective(Context& ctx, const std::vector<Backend*>& ranks,
                    const std::vector<std::shared_ptr<const LaunchPlan>>& plans,
                    const std::vector<std::vector<Buffer*>>& tensors, const std::vector<LaunchOptions>& opts) {
  size_t n = ranks.size();
  if (plans.size() != n || tensors.size() != n || opts.size() != n)
    throw Error(fmt::format("run_collective: {} ranks, {} plans, {} tensor lists, {} options", n, plans.size(),
                            tensors.size(), opts.size()));
  std::vector<std::exception_ptr> failed(n);
  auto one = [&](size_t r) {
    try {
      ctx.run(*ranks[r], *plans[r], tensors[r], opts[r]);
    } catch (...) {
      failed[r] = std::current_exception();
    }
  };
  if (n > 0 && ranks[0]->name() == "cpu") {
    std::vector<std::thread> threads;
    for (size_t r = 1; r < n; ++r) threads.emplace_back(one, r);
    one(0);
    for (auto& t : threads) t.join();
  } else {
    for (size_t r = 0; r < n; ++r) one(r);
  }
  for (auto& e : failed)
    if (e) std::rethrow_exception(e);
}

void launch(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
            const std::vector<Buffer*>& tensors, const LaunchOptions& opts) {
  Context::global().launch(backend, k, dtype, shape, tensors, opts);
}

}  // namespace mtile
