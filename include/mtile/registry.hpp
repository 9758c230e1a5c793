// The kernel registry: each kernel with its contract, reference, inputs, tolerances and shapes.
// One registry drives `mtile test`, `mtile bench`, the CTest cases and golden files.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mtile/dsl.hpp"

namespace mtile {

// Named problem sizes, e.g. {rows: 64, n: 4096}.
using Shape = std::map<std::string, uint32_t>;
std::string shape_text(const Shape& s);      // "rows=64,n=4096"
Shape parse_shape(const std::string& text);  // throws Error on bad text

// Launch geometry: threadgroups along x, y, z and threads per threadgroup.
struct Geometry {
  std::array<uint32_t, 3> grid{1, 1, 1};
  uint32_t tpg = 1;
  uint64_t threadgroups() const { return uint64_t(grid[0]) * grid[1] * grid[2]; }
};

// One rule of a kernel's contract, over the shape's sizes and the geometry ("tpg", "grid").
struct Precondition {
  std::string rule;               // as the user reads it: "n % 128 == 0"
  std::vector<std::string> uses;  // names whose values an error shows: {"n"}
  std::function<bool(const std::map<std::string, uint64_t>&)> holds;
};

// How a tensor's initial contents are drawn.
struct Init {
  enum class Kind { Uniform, Constant, Poison } kind = Kind::Uniform;
  double lo = -1.0, hi = 1.0;  // Uniform range; Constant uses lo
  static Init uniform(double lo, double hi) { return {Kind::Uniform, lo, hi}; }
  static Init constant(double v) { return {Kind::Constant, v, v}; }
};

// Host tensors in float64, one per parameter (empty for constexprs), for references.
using HostTensors = std::vector<std::vector<double>>;

struct Tolerance {
  double rel_l2;   // ||out - ref|| / ||ref||
  double max_abs;  // largest |out - ref|
};

struct KernelSpec {
  dsl::KernelDef def;
  std::string family;
  std::string summary;
  std::vector<std::string> dims;  // shape names it takes, e.g. {"rows", "n"}
  std::string dispatch_rule;      // "grid = rows, tpg = n / 4"
  std::function<Geometry(const Shape&)> dispatch;
  std::vector<Precondition> preconditions;
  std::function<std::map<std::string, uint32_t>(const Shape&)> constexprs;   // constexpr values
  std::function<uint64_t(const std::string& param, const Shape&)> elements;  // tensor sizes
  std::map<std::string, Init> inits;                                         // by parameter; default uniform(-1, 1)
  // Fills the outputs (by parameter index) from the inputs, in float64.
  std::function<void(const Shape&, HostTensors&)> reference;
  std::map<ScalarType, Tolerance> tolerance;
  std::function<uint64_t(const Shape&, ScalarType)> bytes;  // minimal device traffic
  Shape example_shape;                                      // `mtile run` without --shape
  std::vector<Shape> test_shapes;
  std::vector<Shape> bench_shapes;

  const std::string& name() const { return def.name; }
  bool has_dtype(ScalarType t) const;
};

// Registry of the standard library, in registration order.
const std::vector<KernelSpec>& kernels();
const KernelSpec& find_kernel(const std::string& name);  // throws Error listing known names

// Throws Error unless `s` names exactly the kernel's dims.
void validate_shape(const KernelSpec& k, const Shape& s);
// Contract check: the values the rules see, and a throw naming kernel, rule and values.
std::map<std::string, uint64_t> contract_bindings(const KernelSpec& k, const Shape& s, const Geometry& g);
void check_contract(const KernelSpec& k, const Shape& s, const Geometry& g);

}  // namespace mtile
