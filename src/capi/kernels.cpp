// The kernel table and the C ABI's queries of kernels.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deque>

#include "capi/kernel_table.hpp"
#include "capi/status.hpp"
#include "mtile/runtime.hpp"

namespace mtile::capi {
namespace {

struct Table {
  std::mutex mu;
  std::deque<mtile_kernel> entries;  // a deque: handles stay where they are as it grows
};

Table& table() {
  static Table* t = new Table();  // never destroyed: handles outlive static destruction
  return *t;
}

// Adds the kernels registered since the last call. Returns the table's size.
size_t sync(Table& t) {
  std::vector<Kernel> all = kernels();
  std::lock_guard lock(t.mu);
  for (size_t i = t.entries.size(); i < all.size(); ++i) t.entries.emplace_back(all[i]);
  return t.entries.size();
}

std::string joined(const std::vector<std::string>& parts) {
  return fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace

size_t kernel_count() {
  return sync(table());
}

const mtile_kernel& kernel_at(size_t index) {
  Table& t = table();
  size_t n = sync(t);
  if (index >= n) throw Error(fmt::format("kernel index {} is out of range: {} kernels are registered", index, n));
  std::lock_guard lock(t.mu);
  return t.entries[index];
}

static const mtile_kernel* find_in(Table& t, const std::string& name) {
  size_t n = sync(t);
  std::lock_guard lock(t.mu);
  for (size_t i = 0; i < n; ++i)
    if (t.entries[i].kernel.name() == name) return &t.entries[i];
  return nullptr;
}

const mtile_kernel& kernel_named(const std::string& name) {
  if (const mtile_kernel* k = find_in(table(), name)) return *k;
  find_kernel(name);  // throws the registry's message, which lists the known names
  if (const mtile_kernel* k = find_in(table(), name)) return *k;  // registered since the first look
  throw InternalError(fmt::format("kernel '{}' is registered but not in the C ABI's table", name));
}

// mtile_dtype codes 1.. follow ScalarType's order but for bool, which has no code.
constexpr ScalarType kCodes[] = {ScalarType::f32,   ScalarType::f16, ScalarType::bf16, ScalarType::u32,
                                 ScalarType::i32,   ScalarType::u64, ScalarType::i64,  ScalarType::u8,
                                 ScalarType::i8,    ScalarType::u16, ScalarType::i16,  ScalarType::f8e4m3,
                                 ScalarType::f8e5m2};

int32_t abi_dtype(ScalarType t) {
  for (size_t i = 0; i < std::size(kCodes); ++i)
    if (kCodes[i] == t) return static_cast<int32_t>(i + 1);
  throw InternalError(fmt::format("C ABI: no mtile_dtype for {}", type_name(t)));
}

std::optional<ScalarType> scalar_type(int32_t dtype) {
  if (dtype < 1 || dtype > static_cast<int32_t>(std::size(kCodes))) return std::nullopt;
  return kCodes[dtype - 1];
}

void bad_dtype(const std::string& what, int32_t dtype) {
  std::vector<std::string> codes;
  for (size_t i = 0; i < std::size(kCodes); ++i) codes.push_back(fmt::format("{} {}", i + 1, type_name(kCodes[i])));
  throw Error(fmt::format("{}: {} is not an element type (mtile_dtype: {})", what, dtype, fmt::join(codes, ", ")));
}

}  // namespace mtile::capi

using namespace mtile;

mtile_kernel::mtile_kernel(Kernel k) : kernel(std::move(k)) {
  const KernelSpec& spec = kernel.spec();
  std::vector<std::string> rules, config, sizes;
  for (const rule::Expr& p : spec.preconditions) rules.push_back(p.text());
  for (const ConfigParam& c : spec.config) config.push_back(c.name + " = " + c.choice.text());
  const auto& params = spec.def.params();
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].kind == ir::ParamKind::Scalar) scalar_params.push_back(i);
    if (params[i].kind != ir::ParamKind::Tensor) continue;
    tensor_params.push_back(i);
    sizes.push_back(params[i].name + " = " + spec.sizes.at(params[i].name).text());
  }
  texts = {spec.summary,        spec.family,          spec.dispatch.text(),
           capi::joined(rules), capi::joined(config), capi::joined(sizes)};
  for (ScalarType t : spec.def.dtypes()) dtypes.push_back(capi::abi_dtype(t));
}

const std::vector<ScalarType>& mtile_kernel::param_types(ScalarType t) const {
  // Tracing needs a Config; the rules' choice for the kernel's first test shape on the CPU engine
  // serves, as a parameter's type never depends on the Config.
  std::call_once(traced_, [&] {
    const KernelSpec& spec = kernel.spec();
    Context& ctx = Context::global();
    Config config = resolve(spec, spec.test_shapes.front(), ctx.backend("cpu").target()).config;
    for (ScalarType v : spec.def.dtypes()) {
      auto& types = param_types_[static_cast<size_t>(v)];
      for (const ir::Param& p : ctx.traced(kernel, v, config)->params) types.push_back(p.elem);
    }
  });
  const auto& types = param_types_[static_cast<size_t>(t)];
  if (types.empty()) {
    std::vector<std::string> have;
    for (ScalarType v : kernel->def.dtypes()) have.push_back(type_name(v));
    throw Error(
        fmt::format("kernel {} has no {} variant (it has {})", kernel.name(), type_name(t), fmt::join(have, ", ")));
  }
  return types;
}

extern "C" {

int mtile_kernel_count(size_t* count) {
  return capi::guard([&] {
    if (!count) throw Error("mtile_kernel_count: count is NULL");
    *count = capi::kernel_count();
  });
}

int mtile_kernel_at(size_t index, const mtile_kernel** kernel) {
  return capi::guard([&] {
    if (!kernel) throw Error("mtile_kernel_at: kernel is NULL");
    *kernel = &capi::kernel_at(index);
  });
}

int mtile_kernel_find(const char* name, const mtile_kernel** kernel) {
  return capi::guard([&] {
    if (!name || !kernel) throw Error("mtile_kernel_find: name or kernel is NULL");
    *kernel = &capi::kernel_named(name);
  });
}

const char* mtile_kernel_name(const mtile_kernel* k) {
  return k ? k->kernel.name().c_str() : nullptr;
}

const char* mtile_kernel_text(const mtile_kernel* k, int32_t what) {
  return k && what >= 0 && what < static_cast<int32_t>(k->texts.size()) ? k->texts[what].c_str() : nullptr;
}

size_t mtile_kernel_dim_count(const mtile_kernel* k) {
  return k ? k->kernel->dims.size() : 0;
}

const char* mtile_kernel_dim(const mtile_kernel* k, size_t index) {
  return k && index < k->kernel->dims.size() ? k->kernel->dims[index].c_str() : nullptr;
}

size_t mtile_kernel_dtype_count(const mtile_kernel* k) {
  return k ? k->dtypes.size() : 0;
}

int32_t mtile_kernel_dtype(const mtile_kernel* k, size_t index) {
  return k && index < k->dtypes.size() ? k->dtypes[index] : MTILE_DTYPE_AUTO;
}

size_t mtile_kernel_param_count(const mtile_kernel* k) {
  return k ? k->kernel->def.params().size() : 0;
}

int mtile_kernel_param(const mtile_kernel* k, size_t index, int32_t dtype, mtile_param* param) {
  return capi::guard([&] {
    if (!k || !param) throw Error("mtile_kernel_param: kernel or param is NULL");
    const auto& params = k->kernel->def.params();
    if (index >= params.size())
      throw Error(fmt::format("kernel {} has {} parameters, not {}", k->kernel.name(), params.size(), index + 1));
    std::optional<ScalarType> t = capi::scalar_type(dtype);
    if (!t) capi::bad_dtype(fmt::format("kernel {}: variant", k->kernel.name()), dtype);
    const ir::Param& p = params[index];
    param->name = p.name.c_str();
    param->kind = p.kind == ir::ParamKind::Tensor   ? MTILE_PARAM_TENSOR
                  : p.kind == ir::ParamKind::Scalar ? MTILE_PARAM_SCALAR
                                                    : MTILE_PARAM_CONSTEXPR;
    param->role = p.role == ir::Role::Out     ? MTILE_ROLE_OUT
                  : p.role == ir::Role::InOut ? MTILE_ROLE_INOUT
                                              : MTILE_ROLE_IN;
    param->dtype = capi::abi_dtype(k->param_types(*t).at(index));
  });
}

}  // extern "C"
