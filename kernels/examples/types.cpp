// Memory types and kernels over two types: example_dequant_fp8 reads fp8 (e4m3) values;
// example_convert is generic over its input and its output type.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: dequant_fp8
template <class T>
void example_dequant_fp8(In<f8e4m3> q, Out<T> y, Scalar<f32> scale, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], cast<T>(load<f32>(q[i]) * scale)); });  // the load widens fp8 to f32
}
// doc-snippet-end

// doc-snippet: convert
template <class TIn, class TOut>
void example_convert(In<TIn> x, Out<TOut> y, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], cast<TOut>(load<f32>(x[i]))); });
}
// doc-snippet-end

}  // namespace

KernelSpec example_dequant_fp8_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_dequant_fp8", ir::Mode::Elementwise, {"q", "y", "scale", "n"},
                                MTILE_FLOAT_VARIANTS(example_dequant_fp8));
  k.family = "examples";
  k.summary = "y = scale * q from fp8 e4m3 values (memory-only element types)";
  elementwise_contract(k);
  k.sizes = {{"q", rule::var("n")}, {"y", rule::var("n")}};
  k.inits = {{"q", Init::uniform(-400.0, 400.0)}, {"scale", Init::uniform(0.001, 0.01)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto& q = t["q"];  // as the kernel reads it: rounded to e4m3
    auto& y = t["y"];
    const double scale = t["scale"][0];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) y[i] = q[i] * scale;
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 3000}}};
  return k;
}

// `out_dtype` picks the output type (a type code; `--config out_dtype=bf16`), f32 unless set.
KernelSpec example_convert_spec() {
  KernelSpec k;
  k.family = "examples";
  k.summary = "y = x converted to the type config out_dtype names (a kernel over two types)";
  // doc-snippet: convert_spec
  k.def = define_two_type_kernel("example_convert", ir::Mode::Elementwise, {"x", "y", "n"}, "out_dtype",
                                 MTILE_FLOAT_TYPE_PAIRS(example_convert));
  elementwise_contract(k);
  k.config.push_back({"out_dtype", type_code(ScalarType::f32)});
  // doc-snippet-end
  k.sizes = {{"x", rule::var("n")}, {"y", rule::var("n")}};
  k.inits = {{"x", Init::uniform(-1000.0, 1000.0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto& x = t["x"];
    auto& y = t["y"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) y[i] = t.round_as("y", x[i]);  // rounded as y's type stores it
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 5000}}};
  return k;
}

}  // namespace mtile::lib
