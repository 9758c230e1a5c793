// The registry, spec checks, and resolving a kernel's rules for one launch (the contract check
// every launch goes through).
#include "mtile/registry.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>

#include "registry/standard_library.hpp"

namespace mtile {

std::string shape_text(const Shape& s) {
  std::string out;
  for (const auto& [k, v] : s) out += fmt::format("{}{}={}", out.empty() ? "" : ",", k, v);
  return out;
}

std::string config_text(const Config& c) {
  return c.empty() ? "-" : shape_text(c);
}

Shape parse_shape(const std::string& text) {
  Shape s;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error(fmt::format("bad shape '{}': expected NAME=VALUE[,NAME=VALUE...], e.g. rows=64,n=4096", text));
    std::string name = item.substr(0, eq), value = item.substr(eq + 1);
    if (value.find_first_not_of("0123456789") != std::string::npos || value.size() > 10 ||
        std::stoull(value) > 0xffffffffull)
      throw Error(fmt::format("bad shape '{}': '{}' is not a u32 number", text, value));
    if (s.count(name)) throw Error(fmt::format("bad shape '{}': '{}' is given twice", text, name));
    s[name] = static_cast<uint32_t>(std::stoull(value));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (s.empty()) throw Error("empty shape: expected NAME=VALUE[,NAME=VALUE...]");
  return s;
}

// ---------------------------------------------------------------------------------------------
// Host tensors.

HostTensors::HostTensors(std::string kernel, ScalarType dtype, std::vector<std::string> names,
                         std::vector<ScalarType> elems)
    : kernel_(std::move(kernel)),
      dtype_(dtype),
      names_(std::move(names)),
      elems_(std::move(elems)),
      data_(names_.size()) {}

double HostTensors::round(double v) const {
  return is_float(dtype_) ? round_to(dtype_, static_cast<float>(v)) : v;
}

double HostTensors::round_as(const std::string& name, double v) const {
  size_t i = index(name);
  ScalarType t = i < elems_.size() ? elems_[i] : dtype_;
  return is_float(t) ? round_to(t, static_cast<float>(v)) : v;
}

size_t HostTensors::index(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (!names_[i].empty() && names_[i] == name) return i;
  std::vector<std::string> have;
  for (const auto& n : names_)
    if (!n.empty()) have.push_back(n);
  throw Error(fmt::format("kernel {}: the reference reads tensor '{}', which it does not have (tensors: {})", kernel_,
                          name, fmt::join(have, ", ")));
}

std::vector<double>& HostTensors::operator[](const std::string& name) {
  return data_[index(name)];
}
const std::vector<double>& HostTensors::operator[](const std::string& name) const {
  return data_[index(name)];
}

std::string Dispatch::text() const {
  std::string s = "grid = " + grid.text();
  if (grid_y.text() != "1") s += ", grid_y = " + grid_y.text();
  if (grid_z.text() != "1") s += ", grid_z = " + grid_z.text();
  return s + ", tpg = " + tpg.text();
}

// ---------------------------------------------------------------------------------------------
// Checking a spec.

namespace {

const std::vector<std::string>& geometry_names() {
  static const std::vector<std::string> n = {"grid", "grid_y", "grid_z", "tpg"};
  return n;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class SpecChecker {
 public:
  explicit SpecChecker(const KernelSpec& k) : k_(k) {}

  void run() {
    if (k_.def.empty()) throw Error("a kernel spec has no definition (field 'def')");
    name_ = k_.name();
    std::vector<std::string> names;
    for (const std::string& d : k_.dims) add_name(names, d, "dim");
    names.push_back("dtype_bytes");  // resolve's: 0 where the dtype is not known
    for (const ConfigParam& c : k_.config) {
      if (c.choice.empty()) fail("config", fmt::format("meta-parameter '{}' has no rule choosing it", c.name));
      reads(c.choice, names, fmt::format("the rule choosing '{}'", c.name));
      add_name(names, c.name, "meta-parameter");
    }
    if (k_.dispatch.grid.empty()) fail("dispatch.grid", "missing (threadgroups along x, a rule)");
    if (k_.dispatch.tpg.empty()) fail("dispatch.tpg", "missing (threads per threadgroup, a rule)");
    for (const rule::Expr* e : {&k_.dispatch.grid, &k_.dispatch.grid_y, &k_.dispatch.grid_z, &k_.dispatch.tpg})
      reads(*e, names, "the dispatch rule");
    std::vector<std::string> sized = names;
    for (const std::string& g : geometry_names()) sized.push_back(g);
    for (const rule::Expr& p : k_.preconditions) reads(p, sized, "a precondition");

    const auto& params = k_.def.params();
    for (const ir::Param& p : params) {
      if (p.kind == ir::ParamKind::Scalar) continue;
      if (p.kind == ir::ParamKind::Tensor) {
        auto it = k_.sizes.find(p.name);
        if (it == k_.sizes.end() || it->second.empty())
          fail("sizes", fmt::format("tensor '{}' has no size (elements, a rule over the dims)", p.name));
        reads(it->second, names, fmt::format("the size of '{}'", p.name));
      } else if (auto it = k_.constexprs.find(p.name); it != k_.constexprs.end()) {
        reads(it->second, names, fmt::format("the value of constexpr '{}'", p.name));
      } else if (!contains(k_.dims, p.name)) {
        fail("constexprs", fmt::format("constexpr '{}' has no value (give a rule, or name a dim after it)", p.name));
      }
    }
    for (const auto& [n, layout] : k_.strided)
      for (const rule::Expr& e : layout.shape) reads(e, names, fmt::format("the shape of strided '{}'", n));
    auto param_named = [&](const std::string& n, ir::ParamKind kind) {
      for (const ir::Param& p : params)
        if (p.name == n && p.kind == kind) return true;
      return false;
    };
    for (const auto& [n, e] : k_.sizes)
      if (!param_named(n, ir::ParamKind::Tensor)) fail("sizes", fmt::format("'{}' is not a tensor parameter", n));
    for (const auto& [n, e] : k_.constexprs)
      if (!param_named(n, ir::ParamKind::Constexpr))
        fail("constexprs", fmt::format("'{}' is not a constexpr parameter", n));
    for (const auto& [a, b] : k_.may_alias) may_alias(a, b);
    for (const std::string& n : k_.scratch) {
      bool inout = false;
      for (const ir::Param& p : params)
        inout |= p.name == n && p.kind == ir::ParamKind::Tensor && p.role == ir::Role::InOut;
      if (!inout) fail("scratch", fmt::format("'{}' is not an InOut tensor parameter", n));
    }
    for (const std::string& n : k_.launch_constexprs)
      if (!param_named(n, ir::ParamKind::Constexpr))
        fail("launch_constexprs", fmt::format("'{}' is not a constexpr parameter", n));
    for (const std::string& n : k_.symmetric) {
      if (!param_named(n, ir::ParamKind::Tensor)) fail("symmetric", fmt::format("'{}' is not a tensor parameter", n));
      bool slot = false;
      for (const ConfigParam& c : k_.config) slot |= c.name == n + "_slot";
      if (!slot) fail("symmetric", fmt::format("'{}' has no Config parameter '{}_slot'", n, n));
    }
    if (!k_.symmetric.empty() && (!contains(k_.dims, "ranks") || !param_named("rank", ir::ParamKind::Scalar)))
      fail("symmetric", "a collective kernel has the dim 'ranks' and a u32 Scalar parameter 'rank'");
    for (const auto& [n, init] : k_.inits)
      if (!param_named(n, ir::ParamKind::Tensor) && !param_named(n, ir::ParamKind::Scalar))
        fail("inits", fmt::format("'{}' is neither a tensor nor a scalar parameter", n));
    reads(k_.bytes, names, "the bytes rule");
    reads(k_.flops, names, "the flops rule");

    if (!k_.reference) fail("reference", "missing (a float64 reference that fills the outputs)");
    for (ScalarType t : k_.def.dtypes())
      if (!k_.tolerance.count(t)) fail("tolerance", fmt::format("none for dtype {}", type_name(t)));
    if (k_.test_shapes.empty()) fail("test_shapes", "empty (the shapes `mtile test` and CI check)");
    for (const Shape& s : k_.test_shapes) shape(s, "test_shapes");
    for (const Shape& s : k_.bench_shapes) shape(s, "bench_shapes");
    if (!k_.example_shape.empty()) shape(k_.example_shape, "example_shape");
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(fmt::format("kernel {}: spec field '{}': {}", name_, field, what));
  }

  void add_name(std::vector<std::string>& names, const std::string& n, const char* what) {
    const auto& target = Target::binding_names();
    if (n.empty()) fail(what == std::string("dim") ? "dims" : "config", fmt::format("a {} without a name", what));
    if (contains(names, n) || contains(geometry_names(), n) || contains(target, n) || n == "dtype_bytes")
      fail(what == std::string("dim") ? "dims" : "config",
           fmt::format("{} '{}' is taken (by another dim or meta-parameter, the geometry or the target's facts)", what,
                       n));
    names.push_back(n);
  }

  // A may_alias pair: two tensors of one element type, at least one of them an output.
  void may_alias(const std::string& a, const std::string& b) const {
    auto tensor = [&](const std::string& n) -> const ir::Param& {
      for (const ir::Param& p : k_.def.params())
        if (p.name == n && p.kind == ir::ParamKind::Tensor) return p;
      fail("may_alias", fmt::format("'{}' (in {{{}, {}}}) is not a tensor parameter", n, a, b));
    };
    const ir::Param &pa = tensor(a), &pb = tensor(b);
    if (a == b) fail("may_alias", fmt::format("{{{}, {}}} names one tensor twice", a, b));
    if (pa.role == ir::Role::In && pb.role == ir::Role::In)
      fail("may_alias", fmt::format("{{{}, {}}}: neither is an output (inputs may always share memory)", a, b));
    if (pa.elem != pb.elem)
      fail("may_alias", fmt::format("{{{}, {}}}: {} and {} elements can't be one buffer", a, b, type_name(pa.elem),
                                    type_name(pb.elem)));
  }

  // Every name `e` reads must be one of `known` or a target fact.
  void reads(const rule::Expr& e, const std::vector<std::string>& known, const std::string& where) const {
    for (const std::string& n : e.names())
      if (!contains(known, n) && !contains(Target::binding_names(), n))
        fail("rules", fmt::format("{} ({}) reads '{}', which no launch gives it (it can read: {}, {})", where, e.text(),
                                  n, fmt::join(known, ", "), fmt::join(Target::binding_names(), ", ")));
  }

  void shape(const Shape& s, const char* field) const {
    try {
      validate_shape(k_, s);
    } catch (const Error& e) {
      fail(field, e.what());
    }
  }

  const KernelSpec& k_;
  std::string name_;
};

struct Registry {
  std::mutex mu;
  std::vector<Kernel> all;
  bool loaded = false;
};

Registry& registry() {
  static Registry r;  // the registry of definitions (caches live in a Context)
  return r;
}

// Loads the standard library once; the caller holds the registry's lock.
void load_standard_library(Registry& r) {
  if (r.loaded) return;
  r.loaded = true;
  for (KernelSpec& s : lib::standard_library()) r.all.push_back(make_kernel(std::move(s)));
}

// The constexprs <tensor>_stride<k> of each Strided tensor take their values from its layout.
void strides_to_constexprs(KernelSpec& k) {
  if (k.def.empty()) return;
  const auto& params = k.def.params();
  auto fail = [&](const std::string& what) {
    throw Error(fmt::format("kernel {}: spec field 'strided': {}", k.name(), what));
  };
  std::map<std::string, size_t> ranks;  // tensors with stride constexprs, as the definition has them
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor)
      for (size_t j = i + 1;
           j < params.size() && params[j].name == fmt::format("{}_stride{}", params[i].name, j - i - 1); ++j)
        ranks[params[i].name] = j - i;
  for (const auto& [name, rank] : ranks)
    if (!k.strided.count(name)) fail(fmt::format("Strided tensor '{}' has no layout (shape and strides)", name));
  for (const auto& [name, layout] : k.strided) {
    auto it = ranks.find(name);
    if (it == ranks.end()) fail(fmt::format("'{}' is not a Strided tensor parameter", name));
    if (layout.shape.size() != it->second || layout.strides.size() != it->second)
      fail(fmt::format("'{}' has {} axes; its layout gives {} extents and {} strides", name, it->second,
                       layout.shape.size(), layout.strides.size()));
    for (size_t a = 0; a < it->second; ++a) {
      std::string c = fmt::format("{}_stride{}", name, a);
      // A spec sealed before (a copy of a registered kernel's) has the layout's value already.
      if (auto it = k.constexprs.find(c); it != k.constexprs.end() && it->second.text() != layout.strides[a].text())
        fail(fmt::format("'{}' is set by the layout of '{}' ({}), not in constexprs ({})", c, name,
                         layout.strides[a].text(), it->second.text()));
      k.constexprs[c] = layout.strides[a];
    }
  }
}

}  // namespace

Kernel make_kernel(KernelSpec spec) {
  static std::atomic<uint64_t> next{1};
  strides_to_constexprs(spec);
  SpecChecker(spec).run();
  if (spec.example_shape.empty()) spec.example_shape = spec.test_shapes.front();
  Kernel k;
  k.spec_ = std::make_shared<const KernelSpec>(std::move(spec));
  k.serial_ = next++;
  return k;
}

Kernel register_kernel(KernelSpec spec) {
  Kernel k = make_kernel(std::move(spec));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  load_standard_library(r);
  for (const Kernel& other : r.all)
    if (other.name() == k.name())
      throw Error(fmt::format("register_kernel: a kernel named '{}' is already registered", k.name()));
  r.all.push_back(k);
  return k;
}

std::vector<Kernel> kernels() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  load_standard_library(r);
  return r.all;
}

Kernel find_kernel(const std::string& name) {
  std::vector<Kernel> all = kernels();
  for (const Kernel& k : all)
    if (k.name() == name) return k;
  std::vector<std::string> known;
  for (const Kernel& k : all) known.push_back(k.name());
  throw Error(fmt::format("unknown kernel '{}' (known: {})", name, fmt::join(known, ", ")));
}

void validate_shape(const KernelSpec& k, const Shape& s) {
  for (const std::string& d : k.dims)
    if (!s.count(d))
      throw Error(fmt::format("kernel {}: shape {} lacks '{}' (it takes {})", k.name(), shape_text(s), d,
                              fmt::join(k.dims, ", ")));
  for (const auto& [name, value] : s)
    if (!contains(k.dims, name))
      throw Error(fmt::format("kernel {}: shape has '{}', which it does not take (it takes {})", k.name(), name,
                              fmt::join(k.dims, ", ")));
}

// ---------------------------------------------------------------------------------------------
// Resolving the rules of one launch.

namespace {

uint64_t eval(const KernelSpec& k, const rule::Expr& e, const rule::Bindings& b) {
  try {
    return e.eval(b);
  } catch (const Error& err) {
    throw Error(fmt::format("kernel {}: {}", k.name(), err.what()));
  }
}

uint32_t as_u32(const KernelSpec& k, uint64_t v, const std::string& what, const rule::Expr& e) {
  if (v > UINT32_MAX)
    throw Error(fmt::format("kernel {}: {} = {} = {} does not fit 32 bits", k.name(), what, e.text(), v));
  return static_cast<uint32_t>(v);
}

std::string values(const rule::Expr& e, const rule::Bindings& b) {
  std::vector<std::string> parts;
  for (const std::string& n : e.names())
    if (auto it = b.find(n); it != b.end()) parts.push_back(fmt::format("{} = {}", n, it->second));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// The rules every kernel has: a geometry the target can run.
const std::vector<rule::Expr>& target_rules() {
  using rule::var;
  static const std::vector<rule::Expr> r = {var("tpg") >= 1,
                                            var("tpg") <= var("max_tpg"),
                                            var("grid") >= 1,
                                            var("grid_y") >= 1,
                                            var("grid_z") >= 1,
                                            var("grid") <= var("max_grid"),
                                            var("grid_y") <= var("max_grid_y"),
                                            var("grid_z") <= var("max_grid_z")};
  return r;
}

}  // namespace

Resolved resolve(const KernelSpec& k, const Shape& shape, const Target& target, const Config& overrides,
                 const std::optional<Geometry>& geometry, std::optional<ScalarType> dtype) {
  validate_shape(k, shape);
  Resolved r;
  r.bindings.insert(shape.begin(), shape.end());
  target.bind(r.bindings);
  r.bindings["dtype_bytes"] = dtype ? storage_bytes(*dtype) : 0;
  for (const auto& [name, value] : overrides) {
    bool known = false;
    for (const ConfigParam& c : k.config) known |= c.name == name;
    if (!known) {
      std::vector<std::string> have;
      for (const ConfigParam& c : k.config) have.push_back(c.name);
      throw Error(fmt::format("kernel {}: config '{}' is not one of its meta-parameters ({})", k.name(), name,
                              have.empty() ? "it has none" : fmt::format("it has: {}", fmt::join(have, ", "))));
    }
  }
  for (const ConfigParam& c : k.config) {
    auto o = overrides.find(c.name);
    uint32_t v = o != overrides.end() ? o->second : as_u32(k, eval(k, c.choice, r.bindings), c.name, c.choice);
    r.config[c.name] = v;
    r.bindings[c.name] = v;
  }
  if (geometry) {
    r.geometry = *geometry;
    r.bindings["grid"] = geometry->grid[0];
    r.bindings["grid_y"] = geometry->grid[1];
    r.bindings["grid_z"] = geometry->grid[2];
    r.bindings["tpg"] = geometry->tpg;
  } else {
    const Dispatch& d = k.dispatch;
    const rule::Expr* exprs[] = {&d.grid, &d.grid_y, &d.grid_z, &d.tpg};
    for (int i = 0; i < 4; ++i) {
      uint64_t v = eval(k, *exprs[i], r.bindings);
      r.bindings[geometry_names()[i]] = v;  // the contract sees the full value
      uint32_t saturated = static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
      if (i < 3)
        r.geometry.grid[i] = saturated;
      else
        r.geometry.tpg = saturated;
    }
  }
  for (const ir::Param& p : k.def.params()) {
    if (p.kind == ir::ParamKind::Scalar) continue;
    if (p.kind == ir::ParamKind::Tensor) {
      r.elements[p.name] = eval(k, k.sizes.at(p.name), r.bindings);
    } else {
      auto it = k.constexprs.find(p.name);
      rule::Expr e = it != k.constexprs.end() ? it->second : rule::var(p.name);
      r.constexprs[p.name] = as_u32(k, eval(k, e, r.bindings), "constexpr " + p.name, e);
    }
  }
  return r;
}

void mark_may_alias(const KernelSpec& k, ir::Function& f) {
  for (const auto& [a, b] : k.may_alias)
    for (const std::string& name : {a, b})
      if (int p = f.param_index(name); p >= 0) f.params[p].may_alias = true;
}

void contract_violation(const KernelSpec& k, const Shape& shape, const std::vector<std::string>& broken) {
  throw Error(fmt::format("kernel {}: contract violated: {}. Dispatch rule: {}; shape {}. Nothing was launched.",
                          k.name(), fmt::join(broken, "; "), k.dispatch.text(), shape_text(shape)));
}

std::set<std::string> wide_tensors(const Resolved& r) {
  std::set<std::string> wide;
  for (const auto& [name, count] : r.elements)
    if (count > (uint64_t{1} << 31)) wide.insert(name);
  return wide;
}

// A strided tensor's layout: strides >= 1, and its farthest element, sum((shape_a - 1) * stride_a),
// inside the buffer (an empty shape addresses nothing).
static void check_layout(const KernelSpec& k, const std::string& name, const StridedLayout& layout, const Resolved& r,
                         std::vector<std::string>& broken) {
  std::vector<std::string> shape_text, stride_text, shape_values, stride_values;
  uint64_t last = 0;  // saturating at 2^64 - 1
  bool empty = false;
  for (size_t a = 0; a < layout.shape.size(); ++a) {
    uint64_t extent = eval(k, layout.shape[a], r.bindings), stride = eval(k, layout.strides[a], r.bindings);
    if (stride < 1)
      broken.push_back(fmt::format("stride {} of '{}' >= 1 ({}_stride{} = {} = {})", a, name, name, a,
                                   layout.strides[a].text(), stride));
    empty |= extent == 0;
    uint64_t reach =
        extent > 1 && stride > UINT64_MAX / (extent - 1) ? UINT64_MAX : (extent > 0 ? extent - 1 : 0) * stride;
    last = last > UINT64_MAX - reach ? UINT64_MAX : last + reach;
    shape_text.push_back(layout.shape[a].text());
    stride_text.push_back(layout.strides[a].text());
    shape_values.push_back(fmt::format("{}", extent));
    stride_values.push_back(fmt::format("{}", stride));
  }
  uint64_t elements = r.elements.at(name);
  if (!empty && last >= elements)
    broken.push_back(fmt::format(
        "every element of strided '{}' in its buffer: shape [{}] = [{}] with strides [{}] = [{}] reaches element "
        "{} (sum of (extent - 1) * stride), but '{}' has {} elements ({})",
        name, fmt::join(shape_text, ", "), fmt::join(shape_values, ", "), fmt::join(stride_text, ", "),
        fmt::join(stride_values, ", "), last, name, elements, k.sizes.at(name).text()));
}

void check_contract(const KernelSpec& k, const Shape& shape, const Resolved& r) {
  std::vector<std::string> broken;
  auto check = [&](const rule::Expr& e) {
    if (eval(k, e, r.bindings) == 0) broken.push_back(fmt::format("{} ({})", e.text(), values(e, r.bindings)));
  };
  for (const rule::Expr& e : target_rules()) check(e);
  for (const rule::Expr& e : k.preconditions) check(e);
  // Offsets of large tensors are u64 (wide_tensors); 2^62 keeps byte offsets of 8-byte elements
  // in range.
  constexpr uint64_t kMaxElements = uint64_t{1} << 62;
  for (const auto& [name, count] : r.elements)
    if (count > kMaxElements)
      broken.push_back(fmt::format("elements of '{}' <= 2^62 ({} = {})", name, k.sizes.at(name).text(), count));
  for (const auto& [name, layout] : k.strided) check_layout(k, name, layout, r, broken);
  if (!broken.empty()) contract_violation(k, shape, broken);
}

}  // namespace mtile
