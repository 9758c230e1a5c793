// example_scale_rows: y[r, :] = x[r, :] * w with explicit vectors: four elements a thread, each
// group of four moved by one load_n/store_n.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: scale_rows
template <class T>
void example_scale_rows(In<T> x, In<T> w, Out<T> y, Constexpr n) {
  Val row = program_id(0) * n;
  for_(tid() * 4u, n, lsize() * 4u, [&](Val c) {
    Vec xs = load_n<4, f32>(x, row + c);  // x[row + c] .. x[row + c + 3], each widened to f32
    Vec ws = load_n<4, f32>(w, c);
    store_n<4>(y, row + c,
               {cast<T>(xs[0] * ws[0]), cast<T>(xs[1] * ws[1]), cast<T>(xs[2] * ws[2]), cast<T>(xs[3] * ws[3])});
  });
}
// doc-snippet-end

}  // namespace

KernelSpec example_scale_rows_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_scale_rows", ir::Mode::Elementwise, {"x", "w", "y", "n"},
                                MTILE_FLOAT_VARIANTS(example_scale_rows));
  k.family = "examples";
  k.summary = "y[r, :] = x[r, :] * w in 4-wide vector accesses (load_n, store_n)";
  using rule::var;
  rule::Expr n = var("n");
  k.dims = {"rows", "n"};
  k.config = {{"threads", rule::clamp(rule::round_up(rule::ceil_div(n, 4), var("simd_width")), var("simd_width"),
                                      var("max_tpg"))}};
  k.dispatch = {.grid = var("rows"), .tpg = var("threads")};
  k.preconditions = spec::one_threadgroup_per_row();
  k.preconditions.push_back(n >= 4);
  k.preconditions.push_back(n % 4 == 0);  // each access is four whole elements of a row
  k.sizes = {{"x", var("rows") * n}, {"w", n}, {"y", var("rows") * n}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto &x = t["x"], &w = t["w"];
    auto& y = t["y"];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < n; ++c) y[r * n + c] = x[r * n + c] * w[c];
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"n", 4}}, {{"rows", 3}, {"n", 1000}}, {{"rows", 2}, {"n", 8192}}};
  return k;
}

}  // namespace mtile::lib
