// The checked launch: trace and lower (cached), check the contract and the buffers, then run.
#include <fmt/format.h>

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
    throw Error(fmt::format("kernel {}: no {} variant (dtypes: {})", k.name(), type_name(dtype), fmt::join(have, ", ")));
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

void launch(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
            const std::vector<Buffer*>& tensors, const LaunchOptions& opts) {
  validate_shape(k, shape);
  Geometry g = opts.geometry ? *opts.geometry : k.dispatch(shape);
  check_contract(k, shape, g);
  std::map<std::string, uint32_t> values = k.constexprs(shape);
  auto fn = lowered_kernel(k, dtype, opts.bake_constexprs ? values : std::map<std::string, uint32_t>{});
  if (uses_simdgroups(*fn) && g.tpg % 32 != 0)
    throw Error(fmt::format("kernel {}: contract violated: tpg % 32 == 0 (tpg = {}): it uses simdgroup operations, "
                            "which need whole simdgroups of 32. Nothing was launched.", k.name(), g.tpg));
  if (tensors.size() != fn->params.size())
    throw Error(fmt::format("kernel {}: {} buffers given for {} parameters (pass nullptr for constexprs)", k.name(),
                            tensors.size(), fn->params.size()));
  std::vector<uint32_t> cvals(fn->params.size(), 0);
  for (size_t i = 0; i < fn->params.size(); ++i) {
    const ir::Param& p = fn->params[i];
    if (p.kind == ir::ParamKind::Constexpr) {
      auto it = values.find(p.name);
      if (it == values.end()) throw Error(fmt::format("kernel {}: no value for constexpr '{}'", k.name(), p.name));
      cvals[i] = it->second;
      continue;
    }
    const Buffer* b = tensors[i];
    uint64_t need = k.elements(p.name, shape);
    if (!b) throw Error(fmt::format("kernel {}: no buffer for tensor '{}'", k.name(), p.name));
    if (b->owner != &backend)
      throw Error(fmt::format("kernel {}: buffer for '{}' belongs to another backend", k.name(), p.name));
    if (b->elem != p.elem)
      throw Error(fmt::format("kernel {}: buffer for '{}' holds {}, the kernel expects {}", k.name(), p.name,
                              type_name(b->elem), type_name(p.elem)));
    if (b->count < need)
      throw Error(fmt::format("kernel {}: buffer for '{}' has {} elements, shape {} needs {}", k.name(), p.name,
                              b->count, shape_text(shape), need));
  }
  std::shared_ptr<Executable> exe;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto& slot = g_exes[{backend.instance(), fn.get()}];
    if (!slot) slot = backend.prepare(*fn);
    exe = slot;
  }
  backend.run(*exe, g, tensors, cvals);
}

}  // namespace mtile
