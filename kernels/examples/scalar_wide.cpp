// example_scale_bias: y[r, c] = scale * x[r, c] + b[c], with `scale` a scalar argument passed by
// value with each launch, and offsets that become 64-bit where a launch's tensors pass 2^31
// elements.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: scale_bias
template <class T>
void example_scale_bias(In<T> x, In<T> b, Out<T> y, Scalar<f32> scale, Constexpr n) {
  Val row = program_id(0) * n;  // u32 here; u64 in a launch where x or y holds 2^31 elements or more
  for_(tid(), n, lsize(), [&](Val c) {
    Val v = fma(scale, load<f32>(x[row + c]), load<f32>(b[c]));  // scale: an f32 argument
    store(y[row + c], cast<T>(v));
  });
}
// doc-snippet-end

}  // namespace

KernelSpec example_scale_bias_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_scale_bias", ir::Mode::Elementwise, {"x", "b", "y", "scale", "n"},
                                MTILE_FLOAT_VARIANTS(example_scale_bias));
  k.family = "examples";
  k.summary = "y[r, c] = scale * x[r, c] + b[c] (a scalar argument; 64-bit offsets past 2^31 elements)";
  strided_row_contract(k);
  using rule::var;
  k.sizes = {{"x", var("rows") * var("n")}, {"b", var("n")}, {"y", var("rows") * var("n")}};
  k.inits = {{"scale", Init::uniform(0.5, 2.0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto &x = t["x"], &b = t["b"];
    auto& y = t["y"];
    const double scale = t["scale"][0];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < n; ++c) y[r * n + c] = scale * x[r * n + c] + b[c];
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 64}, {"n", 4096}};
  k.test_shapes = {{{"rows", 1}, {"n", 1}}, {{"rows", 3}, {"n", 777}}, {{"rows", 2}, {"n", 5000}}};
  return k;
}

}  // namespace mtile::lib
