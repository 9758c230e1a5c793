// softmax: out[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)), rows of any length.
#include "kernels/softmax/softmax.hpp"

#include <cmath>

#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void softmax(In<T> x, Out<T> out, Constexpr n) {
  Val base = program_id(0) * n;
  Var local_max(lit(-INFINITY));
  for_(tid(), n, lsize(), [&](Val i) { local_max = max(local_max, load<f32>(x[base + i])); });
  Val row_max = reduce_max(local_max.get());
  Var local_sum(lit(0.0f));
  for_(tid(), n, lsize(), [&](Val i) { local_sum += exp(load<f32>(x[base + i]) - row_max); });
  Val inv_sum = 1.0f / reduce_sum(local_sum.get());
  for_(tid(), n, lsize(),
       [&](Val i) { store(out[base + i], cast<T>(exp(load<f32>(x[base + i]) - row_max) * inv_sum)); });
}

}  // namespace

KernelSpec softmax_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("softmax", ir::Mode::Reduction, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(softmax));
  k.family = "softmax";
  k.summary = "row-wise softmax of rows of any length";
  strided_row_contract(k);
  k.sizes = {{"x", rule::var("rows") * rule::var("n")}, {"out", rule::var("rows") * rule::var("n")}};
  k.inits = {{"x", Init::uniform(-4.0, 4.0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    auto& out = t["out"];
    for (uint64_t r = 0; r < rows; ++r) {
      double m = -INFINITY, sum = 0;
      for (uint64_t i = 0; i < n; ++i) m = std::max(m, x[r * n + i]);
      for (uint64_t i = 0; i < n; ++i) sum += std::exp(x[r * n + i] - m);
      for (uint64_t i = 0; i < n; ++i) out[r * n + i] = std::exp(x[r * n + i] - m) / sum;
    }
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 64}, {"n", 4096}};
  k.test_shapes = {
      {{"rows", 3}, {"n", 1}}, {{"rows", 4}, {"n", 77}}, {{"rows", 2}, {"n", 1000}}, {{"rows", 2}, {"n", 9000}}};
  k.bench_shapes = {{{"rows", 4096}, {"n", 4096}}, {{"rows", 1024}, {"n", 32768}}};
  return k;
}

}  // namespace mtile::lib
