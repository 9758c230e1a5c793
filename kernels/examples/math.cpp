// example_mish: y = x * tanh(softplus(x)), softplus(x) = log(1 + e^x), with a NaN input giving 0.
#include <cmath>

#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: mish
template <class T>
void example_mish(In<T> x, Out<T> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] {
    Val v = load<f32>(x[i]);
    Val softplus = select(v > 20.0f, v, log1p(exp(v)));  // e^v overflows past 88; log1p is exact near 0
    store(y[i], cast<T>(select(isnan(v), lit(0.0f), v * tanh(softplus))));
  });
}
// doc-snippet-end

}  // namespace

KernelSpec example_mish_spec() {
  KernelSpec k;
  k.def =
      define_generic_kernel("example_mish", ir::Mode::Elementwise, {"x", "y", "n"}, MTILE_FLOAT_VARIANTS(example_mish));
  k.family = "examples";
  k.summary = "mish activation, x * tanh(log1p(exp(x))) (math functions)";
  elementwise_contract(k);
  k.sizes = {{"x", rule::var("n")}, {"y", rule::var("n")}};
  k.inits = {{"x", Init::uniform(-6.0, 6.0)}};  // |y| < 8: bf16 rounds it within the tolerance
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto& x = t["x"];
    auto& y = t["y"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) y[i] = x[i] * std::tanh(std::log1p(std::exp(x[i])));
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 1000}}, {{"n", 70001}}};
  return k;
}

}  // namespace mtile::lib
