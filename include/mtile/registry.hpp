// Kernel specs and the registry: each kernel with its contract, Config rules, reference, inputs,
// tolerances and shapes. A spec is written once: its rules are rule::Expr values that compute
// and print themselves, so the text an error or `mtile list` shows is the rule that ran.
// One registry drives `mtile test`, `mtile bench`, the CTest cases and golden files; kernels
// from outside the repo join it with register_kernel().
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mtile/dsl.hpp"
#include "mtile/rule.hpp"
#include "mtile/target.hpp"

namespace mtile {

using dsl::Config;

// Named problem sizes, e.g. {rows: 64, n: 4096}.
using Shape = std::map<std::string, uint32_t>;
std::string shape_text(const Shape& s);      // "rows=64,n=4096"
Shape parse_shape(const std::string& text);  // throws Error on bad text
std::string config_text(const Config& c);    // "threads=256", "-" when empty

// Launch geometry: threadgroups along x, y, z and threads per threadgroup.
struct Geometry {
  std::array<uint32_t, 3> grid{1, 1, 1};
  uint32_t tpg = 1;
  uint64_t threadgroups() const { return uint64_t(grid[0]) * grid[1] * grid[2]; }
  friend bool operator==(const Geometry&, const Geometry&) = default;
};

// How a tensor's initial contents are drawn.
struct Init {
  enum class Kind { Uniform, Constant } kind = Kind::Uniform;
  double lo = -1.0, hi = 1.0;  // Uniform range; Constant uses lo
  static Init uniform(double lo, double hi) { return {Kind::Uniform, lo, hi}; }
  static Init constant(double v) { return {Kind::Constant, v, v}; }
};

// Host tensors in float64, one per tensor parameter, read and written by name in references; a
// scalar parameter is a one-element tensor holding its value.
class HostTensors {
 public:
  HostTensors() = default;
  // `names` by parameter index ("" for constexprs); `dtype` is the launch's element type; `elems`
  // the parameters' element types, by index, where they are known.
  HostTensors(std::string kernel, ScalarType dtype, std::vector<std::string> names, std::vector<ScalarType> elems = {});
  ScalarType dtype() const { return dtype_; }
  // `v` as a tensor of the launch's dtype stores it (rounded to f32, f16 or bf16).
  double round(double v) const;
  // `v` as tensor `name` stores it (its element type may differ from the dtype: a cast's output).
  double round_as(const std::string& name, double v) const;
  // Throws Error naming the kernel and its tensors when `name` is not one of them.
  std::vector<double>& operator[](const std::string& name);
  const std::vector<double>& operator[](const std::string& name) const;
  std::vector<double>& at(size_t param) { return data_.at(param); }  // by parameter index
  size_t size() const { return data_.size(); }

 private:
  size_t index(const std::string& name) const;
  std::string kernel_;
  ScalarType dtype_ = ScalarType::f32;
  std::vector<std::string> names_;  // by parameter index ("" for constexprs)
  std::vector<ScalarType> elems_;
  std::vector<std::vector<double>> data_;
};

struct Tolerance {
  double rel_l2;   // ||out - ref|| / ||ref||
  double max_abs;  // largest |out - ref|
  // Largest distance, in representable values of the output's element type, between an element
  // and its reference rounded to that type (0: exact, 1: one step of the type's grid). Unlimited
  // by default; set it where a grid is coarse (fp8 outputs) or a result must be exact.
  uint64_t max_steps = UINT64_MAX;
};

// Threadgroups along x, y, z and threads per threadgroup, as rules over the shape's dims, the
// Config and the target's facts.
struct Dispatch {
  rule::Expr grid, grid_y = 1, grid_z = 1, tpg;
  std::string text() const;  // "grid = rows, tpg = n / 4"
};

// One meta-parameter: its name and the rule that chooses it from the shape's dims, the target's
// facts (sm_count, max_tpg, ...) and the meta-parameters declared before it.
struct ConfigParam {
  std::string name;
  rule::Expr choice;
};

// A Strided<Tensor, R> parameter's layout, as rules over the dims and Config: its extent and its
// stride (in elements) along each axis.
struct StridedLayout {
  std::vector<rule::Expr> shape, strides;
};

struct KernelSpec {
  dsl::KernelDef def;
  std::string family;
  std::string summary;
  std::vector<std::string> dims;    // shape names it takes, e.g. {"rows", "n"}
  std::vector<ConfigParam> config;  // meta-parameters, chosen in order
  Dispatch dispatch;
  // Rules over dims, config, target facts and the geometry (grid, grid_y, grid_z, tpg), checked
  // before every launch; each fails with its own text and the values it read.
  std::vector<rule::Expr> preconditions;
  // Values of constexpr parameters; one named like a dim defaults to that dim.
  std::map<std::string, rule::Expr> constexprs;
  std::map<std::string, rule::Expr> sizes;  // elements of every tensor parameter
  // Pairs of tensors, an output (Out/InOut) and another tensor, that a launch may pass the same
  // buffer for, exactly (the same address and elements; never a partial overlap): {"out", "x"} for
  // a kernel that is correct in place. Any other overlap of an output with another tensor's memory
  // is refused before the launch (Context::run).
  std::vector<std::pair<std::string, std::string>> may_alias;
  // Layouts of Strided tensor parameters by name; the strides become the values of the constexprs
  // <name>_stride<k>. A launch checks strides >= 1 and sum((shape_k - 1) * stride_k) < size.
  std::map<std::string, StridedLayout> strided;
  // InOut tensors the caller lends the kernel as working memory (split partial results): their
  // contents before and after a launch are unspecified, so the reference leaves them alone and the
  // harness does not compare them.
  std::set<std::string> scratch;
  // Constexprs passed at every launch instead of baked into the code: dims that change from call to
  // call (attention_decode's seq grows by one each decode step), so that a new value compiles
  // nothing. Baked all the same where a tensor passes 2^31 elements (widen_indices bounds loops by
  // them).
  std::set<std::string> launch_constexprs;
  // A collective kernel (tensor parallelism, docs/collectives.md) names its symmetric tensors here:
  // memory every rank maps at one address (alloc_symmetric), rank r's slice at element r * slot.
  // Such a kernel has the dim "ranks" and a u32 Scalar "rank", and for each symmetric tensor t a
  // Config parameter "<t>_slot" whose rule gives the elements of a rank's slice (the launcher
  // replaces it by the allocation's slot) and t's size is ranks * <t>_slot. It is launched once
  // per rank, every rank at once (run_collective); every other tensor is each rank's own. In
  // checks, references see each rank's own tensors one after the other (rank-major) and each
  // symmetric tensor as its ranks' slices one after the other.
  std::set<std::string> symmetric;
  std::map<std::string, Init> inits;  // tensors' and scalars' values in checks; default uniform(-1, 1)
  // Fills the outputs from the inputs, in float64, by name: t["out"][i] = f(t["x"][i]).
  std::function<void(const Shape&, HostTensors&)> reference;
  std::map<ScalarType, Tolerance> tolerance;
  // Outputs checked with their own tolerance (the same for every dtype) instead of `tolerance`,
  // by name: e.g. an fp8 output next to outputs of the kernel's dtype.
  std::map<std::string, Tolerance> output_tolerance;
  // Minimal device traffic in bytes; by default every tensor once (in-out twice) at its element
  // size. A rule may read `dtype_bytes`, the kernel's element size.
  rule::Expr bytes;
  rule::Expr flops;     // by default none counted
  Shape example_shape;  // `mtile run` without --shape
  std::vector<Shape> test_shapes;
  std::vector<Shape> bench_shapes;

  const std::string& name() const { return def.name(); }
  bool has_dtype(ScalarType t) const { return def.has_dtype(t); }
};

// A checked, immutable spec: what the registry holds, launches take and caches key on (by
// serial(), unique for the process; never by name or address).
class Kernel {
 public:
  Kernel() = default;
  const KernelSpec& spec() const { return *spec_; }
  const KernelSpec* operator->() const { return spec_.get(); }
  const std::string& name() const { return spec_->name(); }
  uint64_t serial() const { return serial_; }
  explicit operator bool() const { return spec_ != nullptr; }

 private:
  friend Kernel make_kernel(KernelSpec spec);
  std::shared_ptr<const KernelSpec> spec_;
  uint64_t serial_ = 0;
};

// Checks a spec and seals it. Throws Error naming the kernel and the field for a missing field
// (no definition, dispatch rule, size of a tensor, reference, tolerance, test shape) or a rule
// that reads a name no launch binds.
Kernel make_kernel(KernelSpec spec);
// make_kernel, then adds it to the process's registry (thread-safe). A taken name is an Error.
Kernel register_kernel(KernelSpec spec);
// The standard library, then registered kernels, in registration order.
std::vector<Kernel> kernels();
Kernel find_kernel(const std::string& name);  // throws Error listing known names

// Throws Error unless `s` names exactly the kernel's dims.
void validate_shape(const KernelSpec& k, const Shape& s);

// What a kernel's rules give for one launch, before anything is compiled or allocated.
struct Resolved {
  Config config;
  Geometry geometry;
  rule::Bindings bindings;                     // everything the rules read: dims, config, target facts, geometry
  std::map<std::string, uint32_t> constexprs;  // by parameter name
  std::map<std::string, uint64_t> elements;    // by tensor parameter name
};
// Chooses the Config (overrides replace the rules' choices; an unknown name is an Error), the
// geometry (or takes `geometry`), and evaluates constexprs and sizes. Checks nothing else. The
// rules see the element type's size as `dtype_bytes` (2 for bf16 and f16); without `dtype` it is
// 0, and a rule must then choose what serves every dtype.
Resolved resolve(const KernelSpec& k, const Shape& shape, const Target& target, const Config& overrides = {},
                 const std::optional<Geometry>& geometry = {}, std::optional<ScalarType> dtype = {});
// The contract: the target's limits (1 <= tpg <= max_tpg, 1 <= grid <= max_grid on each axis),
// the kernel's preconditions, at most 2^62 elements a tensor, and strided tensors' layouts. Throws Error naming the
// kernel, every broken rule and the values it read, and "Nothing was launched".
void check_contract(const KernelSpec& k, const Shape& shape, const Resolved& r);
// Marks the tensors of the spec's may_alias pairs in `f` (ir::Param::may_alias), before the pass
// pipeline: what may share memory is kept in order and not declared __restrict__.
void mark_may_alias(const KernelSpec& k, ir::Function& f);
// Tensors that may hold more than 2^31 elements at this shape: their offsets are computed in 64
// bits (PipelineOptions::wide), everything else in 32.
std::set<std::string> wide_tensors(const Resolved& r);
// The message check_contract throws, for rules found broken elsewhere (after lowering).
[[noreturn]] void contract_violation(const KernelSpec& k, const Shape& shape, const std::vector<std::string>& broken);

}  // namespace mtile
