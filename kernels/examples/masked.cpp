// example_masked_scale: y = 2 x over n elements, four a thread; the elements past n are masked
// off, so n need not be a multiple of anything.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: masked_scale
template <class T>
void example_masked_scale(In<T> x, Out<T> y, Constexpr n) {
  Val base = (program_id(0) * lsize() + tid()) * 4u;
  for (uint32_t k = 0; k < 4; ++k) {  // a C++ loop: unrolled when the kernel is traced
    Val i = base + k;
    Val in_bounds = i < n;
    Val v = load<f32>(x[i], in_bounds, lit(0.0f));  // masked off: reads no memory, gives 0
    store(y[i], cast<T>(v * 2.0f), in_bounds);      // masked off: writes nothing
  }
}
// doc-snippet-end

}  // namespace

KernelSpec example_masked_scale_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_masked_scale", ir::Mode::Elementwise, {"x", "y", "n"},
                                MTILE_FLOAT_VARIANTS(example_masked_scale));
  k.family = "examples";
  k.summary = "y = 2x, four elements a thread, the tail masked (masked loads and stores)";
  elementwise_contract(k, 4);
  k.sizes = {{"x", rule::var("n")}, {"y", rule::var("n")}};
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto& x = t["x"];
    auto& y = t["y"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) y[i] = 2 * x[i];
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 6}}, {{"n", 1023}}, {{"n", 4099}}};
  return k;
}

}  // namespace mtile::lib
