// vector_add: c = a + b, one element a thread over a 1-D grid with a bounds guard.
#include "kernels/elementwise/elementwise.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kThreads = 256;

template <class T>
void vector_add(In<T> a, In<T> b, Out<T> c, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(c[i], cast<T>(load<f32>(a[i]) + load<f32>(b[i]))); });
}

}  // namespace

KernelSpec vector_add_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("vector_add", ir::Mode::Elementwise, {"a", "b", "c", "n"},
                                MTILE_FLOAT_VARIANTS(vector_add));
  k.family = "elementwise";
  k.summary = "c = a + b over n elements";
  k.dims = {"n"};
  k.dispatch_rule = "grid = ceil(n / 256), tpg = 256";
  k.dispatch = [](const Shape& s) {
    Geometry g;
    g.grid[0] = (dim(s, "n") + kThreads - 1) / kThreads;
    g.tpg = kThreads;
    return g;
  };
  k.preconditions = {
      {"n >= 1", {"n"}, [](const auto& v) { return v.at("n") >= 1; }},
      {"grid * tpg >= n", {"grid", "tpg", "n"}, [](const auto& v) { return v.at("grid") * v.at("tpg") >= v.at("n"); }},
  };
  k.constexprs = [](const Shape& s) { return std::map<std::string, uint32_t>{{"n", dim(s, "n")}}; };
  k.elements = [](const std::string&, const Shape& s) -> uint64_t { return dim(s, "n"); };
  k.reference = [](const Shape& s, HostTensors& t) {
    for (uint32_t i = 0; i < dim(s, "n"); ++i) t[2][i] = t[0][i] + t[1][i];
  };
  k.tolerance = float_tolerances();
  k.bytes = [](const Shape& s, ScalarType t) { return 3 * uint64_t(dim(s, "n")) * storage_bytes(t); };
  k.example_shape = {{"n", 1u << 20}};
  k.test_shapes = {{{"n", 1}}, {{"n", 256}}, {{"n", 1000}}, {{"n", 70001}}};
  k.bench_shapes = {{{"n", 1u << 26}}};
  return k;
}

}  // namespace mtile::lib
