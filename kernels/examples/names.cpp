// example_row_rms: rms[r] = sqrt(mean(x[r, :]^2)), one threadgroup a row, with values named so
// that the IR, the CUDA and the Metal read like the source.
#include <cmath>

#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: row_rms
template <class T>
void example_row_rms(In<T> x, Out<f32> rms, Constexpr n) {
  Val row = named("row", program_id(0) * n);
  Var ssq("ssq", lit(0.0f));  // float ssq = 0.0f; in CUDA and Metal
  for_(tid(), n, lsize(), [&](Val c) {
    Val v = load<f32>(x[row + c]);
    ssq += v * v;
  });
  Val total = named("total", reduce_sum(ssq.get()));
  if_(tid() == 0u, [&] { store(rms[program_id(0)], sqrt(total / n.cast<f32>())); });
}
// doc-snippet-end

}  // namespace

KernelSpec example_row_rms_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_row_rms", ir::Mode::Reduction, {"x", "rms", "n"},
                                MTILE_FLOAT_VARIANTS(example_row_rms));
  k.family = "examples";
  k.summary = "rms[r] = sqrt(mean(x[r, :]^2)) with named values (named, Var names)";
  strided_row_contract(k);
  k.sizes = {{"x", rule::var("rows") * rule::var("n")}, {"rms", rule::var("rows")}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    auto& rms = t["rms"];
    for (uint64_t r = 0; r < rows; ++r) {
      double ssq = 0;
      for (uint64_t c = 0; c < n; ++c) ssq += x[r * n + c] * x[r * n + c];
      rms[r] = std::sqrt(ssq / static_cast<double>(n));
    }
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"n", 1}}, {{"rows", 3}, {"n", 1000}}, {{"rows", 2}, {"n", 9000}}};
  return k;
}

}  // namespace mtile::lib
