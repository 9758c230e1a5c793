// example_q_scale: q = qkv[:, 0:n] / sqrt(n), the q part of a fused QKV projection (rows of 3n
// elements: q, k, v) read in place through its strides into a contiguous tensor.
#include <cmath>

#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: q_scale
template <class T>
void example_q_scale(Strided<In<T>, 2> qkv, Out<T> q, Constexpr n) {
  Val r = program_id(0);
  Val scale = rsqrt(n.cast<f32>());
  for_(tid(), n, lsize(), [&](Val c) {
    Val v = load<f32>(qkv(r, c));  // element r * qkv_stride0 + c * qkv_stride1
    store(q[r * n + c], cast<T>(v * scale));
  });
}
// doc-snippet-end

}  // namespace

KernelSpec example_q_scale_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_q_scale", ir::Mode::Elementwise, {"qkv", "q", "n"},
                                MTILE_FLOAT_VARIANTS(example_q_scale));
  k.family = "examples";
  k.summary = "q = qkv[:, :n] / sqrt(n) from a fused QKV projection (a strided tensor)";
  strided_row_contract(k);
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  // doc-snippet: q_scale_layout
  k.sizes = {{"qkv", rows * 3 * n}, {"q", rows * n}};
  k.strided = {{"qkv", {.shape = {rows, n}, .strides = {3 * n, 1}}}};  // q is columns 0 .. n-1 of each row
  // doc-snippet-end
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& qkv = t["qkv"];
    auto& q = t["q"];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < n; ++c) q[r * n + c] = qkv[r * 3 * n + c] / std::sqrt(static_cast<double>(n));
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"n", 1}}, {{"rows", 4}, {"n", 96}}, {{"rows", 3}, {"n", 1000}}};
  return k;
}

}  // namespace mtile::lib
