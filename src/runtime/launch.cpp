// The checked launch: trace and lower (cached), check the contract and the buffers, then run.
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>

#include "mtile/runtime.hpp"
#include "passes/pipeline.hpp"

namespace mtile {
namespace {

bool uses_simdgroups(const ir::Function& f) {
  bool found = false;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    switch (in.op) {
      case ir::Op::SimdSum:
      case ir::Op::SimdMax:
      case ir::Op::SimdMin:
      case ir::Op::ShuffleXor:
      case ir::Op::ShuffleDown: found = true; break;
      default: break;
    }
  });
  return found;
}

struct ExeKey {
  uint64_t backend;
  const ir::Function* fn;
  bool operator<(const ExeKey& o) const { return std::tie(backend, fn) < std::tie(o.backend, o.fn); }
};

std::mutex g_mu;
std::map<std::string, std::shared_ptr<const ir::Function>> g_lowered;
std::map<ExeKey, std::shared_ptr<Executable>> g_exes;

}  // namespace

Backend::Backend() {
  static std::atomic<uint64_t> next{1};
  instance_ = next++;
}

double Backend::measure_ms(const std::function<void()>& work) {
  auto t0 = std::chrono::steady_clock::now();
  work();
  synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::shared_ptr<const ir::Function> lowered_kernel(const KernelSpec& k, ScalarType dtype,
                                                   const std::map<std::string, uint32_t>& bake) {
  if (!k.has_dtype(dtype)) {
    std::vector<std::string> have;
    for (ScalarType t : k.def.dtypes) have.push_back(type_name(t));
    throw Error(
        fmt::format("kernel {}: no {} variant (dtypes: {})", k.name(), type_name(dtype), fmt::join(have, ", ")));
  }
  std::string key = fmt::format("{}<{}>", k.name(), type_name(dtype));
  for (const auto& [n, v] : bake) key += fmt::format(",{}={}", n, v);
  std::lock_guard<std::mutex> lock(g_mu);
  auto& slot = g_lowered[key];
  if (!slot) {
    passes::PipelineOptions opts;
    opts.bake = bake;
    slot = std::make_shared<const ir::Function>(passes::run_pipeline(k.def.trace(dtype), opts));
  }
  return slot;
}

namespace {

// Everything a launch derives from (backend, kernel, dtype, shape, options), kept so that a
// repeated launch only checks its buffers: the contract and the lowering are pure functions
// of the key.
struct PlanKey {
  uint64_t backend;
  const KernelSpec* kernel;
  ScalarType dtype;
  bool bake;
  std::vector<uint32_t> shape;       // values in the spec's dims order
  std::array<uint32_t, 4> geometry;  // override, or zeros
  bool operator<(const PlanKey& o) const {
    return std::tie(backend, kernel, dtype, bake, shape, geometry) <
           std::tie(o.backend, o.kernel, o.dtype, o.bake, o.shape, o.geometry);
  }
};

struct Plan {
  Geometry geometry;
  std::vector<uint32_t> constexprs;  // per parameter
  std::vector<uint64_t> elements;    // per parameter (tensors)
  std::shared_ptr<const ir::Function> fn;
  std::shared_ptr<Executable> exe;
};

std::map<PlanKey, std::shared_ptr<const Plan>> g_plans;

PlanKey plan_key(const Backend& b, const KernelSpec& k, ScalarType dtype, const Shape& shape,
                 const LaunchOptions& opts) {
  PlanKey key{b.instance(), &k, dtype, opts.bake_constexprs, {}, {0, 0, 0, 0}};
  if (shape.size() != k.dims.size()) validate_shape(k, shape);  // throws the precise message
  for (const std::string& d : k.dims) {
    auto it = shape.find(d);
    if (it == shape.end()) validate_shape(k, shape);
    key.shape.push_back(it->second);
  }
  if (opts.geometry)
    key.geometry = {opts.geometry->grid[0], opts.geometry->grid[1], opts.geometry->grid[2], opts.geometry->tpg};
  return key;
}

std::shared_ptr<const Plan> make_plan(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
                                      const LaunchOptions& opts) {
  validate_shape(k, shape);
  auto plan = std::make_shared<Plan>();
  plan->geometry = opts.geometry ? *opts.geometry : k.dispatch(shape);
  const Geometry& g = plan->geometry;
  check_contract(k, shape, g);
  std::map<std::string, uint32_t> values = k.constexprs(shape);
  plan->fn = lowered_kernel(k, dtype, opts.bake_constexprs ? values : std::map<std::string, uint32_t>{});
  const ir::Function& fn = *plan->fn;
  if (uses_simdgroups(fn) && g.tpg % 32 != 0)
    throw Error(
        fmt::format("kernel {}: contract violated: tpg % 32 == 0 (tpg = {}): it uses simdgroup operations, "
                    "which need whole simdgroups of 32. Nothing was launched.",
                    k.name(), g.tpg));
  plan->constexprs.assign(fn.params.size(), 0);
  plan->elements.assign(fn.params.size(), 0);
  for (size_t i = 0; i < fn.params.size(); ++i) {
    const ir::Param& p = fn.params[i];
    if (p.kind == ir::ParamKind::Constexpr) {
      auto it = values.find(p.name);
      if (it == values.end()) throw Error(fmt::format("kernel {}: no value for constexpr '{}'", k.name(), p.name));
      plan->constexprs[i] = it->second;
    } else {
      plan->elements[i] = k.elements(p.name, shape);
    }
  }
  std::lock_guard<std::mutex> lock(g_mu);
  auto& slot = g_exes[{backend.instance(), plan->fn.get()}];
  if (!slot) slot = backend.prepare(fn);
  plan->exe = slot;
  return plan;
}

void check_buffers(const Backend& backend, const KernelSpec& k, const Plan& plan, const Shape& shape,
                   const std::vector<Buffer*>& tensors) {
  const auto& params = plan.fn->params;
  if (tensors.size() != params.size())
    throw Error(fmt::format("kernel {}: {} buffers given for {} parameters (pass nullptr for constexprs)", k.name(),
                            tensors.size(), params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind == ir::ParamKind::Constexpr) continue;
    const Buffer* b = tensors[i];
    if (!b) throw Error(fmt::format("kernel {}: no buffer for tensor '{}'", k.name(), p.name));
    if (b->owner != &backend)
      throw Error(fmt::format("kernel {}: buffer for '{}' belongs to another backend", k.name(), p.name));
    if (b->elem != p.elem)
      throw Error(fmt::format("kernel {}: buffer for '{}' holds {}, the kernel expects {}", k.name(), p.name,
                              type_name(b->elem), type_name(p.elem)));
    // Vector accesses (vectorize_memory) rely on it; every backend's allocator gives it.
    if (b->handle % 16 != 0)
      throw Error(fmt::format("kernel {}: buffer for '{}' is not 16-byte aligned (address 0x{:x})", k.name(), p.name,
                              b->handle));
    if (b->count < plan.elements[i])
      throw Error(fmt::format("kernel {}: buffer for '{}' has {} elements, shape {} needs {}", k.name(), p.name,
                              b->count, shape_text(shape), plan.elements[i]));
  }
}

}  // namespace

void launch(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
            const std::vector<Buffer*>& tensors, const LaunchOptions& opts) {
  PlanKey key = plan_key(backend, k, dtype, shape, opts);
  std::shared_ptr<const Plan> plan;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_plans.find(key);
    if (it != g_plans.end()) plan = it->second;
  }
  if (!plan) {
    plan = make_plan(backend, k, dtype, shape, opts);  // throws on a broken contract: nothing cached
    std::lock_guard<std::mutex> lock(g_mu);
    g_plans[key] = plan;
  }
  check_buffers(backend, k, *plan, shape, tensors);
  backend.run(*plan->exe, plan->geometry, tensors, plan->constexprs);
}

}  // namespace mtile
