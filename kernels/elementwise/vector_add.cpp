// vector_add: c = a + b, one element a thread over a 1-D grid with a bounds guard.
#include "kernels/elementwise/elementwise.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

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
  using rule::var;
  rule::Expr n = var("n");
  k.dims = {"n"};
  k.config = {{"threads", 256}};
  k.dispatch = {.grid = rule::ceil_div(n, var("threads")), .tpg = var("threads")};
  // The whole geometry: as many threadgroups as cover n, of `threads` threads, along x only.
  k.preconditions = {n >= 1, var("tpg") == var("threads"), var("grid") == rule::ceil_div(n, var("threads")),
                     var("grid_y") == 1, var("grid_z") == 1};
  k.sizes = {{"a", n}, {"b", n}, {"c", n}};
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto &a = t["a"], &b = t["b"];
    auto& c = t["c"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) c[i] = a[i] + b[i];
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"n", 1u << 20}};
  k.test_shapes = {{{"n", 1}}, {{"n", 256}}, {{"n", 1000}}, {{"n", 70001}}};
  k.bench_shapes = {{{"n", 1u << 26}}};
  return k;
}

}  // namespace mtile::lib
