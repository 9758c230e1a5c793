// example_transpose: y = x^T for x of rows x cols, a tile x tile block a threadgroup, staged in a
// 2-D threadgroup array so that both the loads of x and the stores of y are consecutive. `tile`
// is a Config meta-parameter (8, 16 or 32).
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: transpose
template <class T>
void example_transpose(In<T> x, Out<T> y, Constexpr rows, Constexpr cols) {
  const uint32_t tile = config("tile");                    // a C++ number when the kernel is traced
  TgArray2D block = threadgroup_array<T>(tile, tile + 1);  // a padding column: no bank conflicts
  Val tr = tid() / tile, tc = tid() % tile;
  Val r = program_id(1) * tile + tr, c = program_id(0) * tile + tc;
  store(block(tr, tc), load(x[r * cols + c], r < rows && c < cols, lit(T::type, 0)));
  barrier();
  Val yr = program_id(0) * tile + tr, yc = program_id(1) * tile + tc;  // y is cols x rows
  store(y[yr * rows + yc], load(block(tc, tr)), yr < cols && yc < rows);
}
// doc-snippet-end

}  // namespace

KernelSpec example_transpose_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_transpose", ir::Mode::Elementwise, {"x", "y", "rows", "cols"},
                                MTILE_FLOAT_VARIANTS(example_transpose));
  k.family = "examples";
  k.summary = "y = x^T through a tile x (tile + 1) threadgroup array (2-D, sized by a Config value)";
  using rule::var;
  rule::Expr rows = var("rows"), cols = var("cols"), tile = var("tile");
  k.dims = {"rows", "cols"};
  k.config = {{"tile", 16}};
  k.dispatch = {.grid = rule::ceil_div(cols, tile), .grid_y = rule::ceil_div(rows, tile), .tpg = tile * tile};
  k.preconditions = {rows >= 1,
                     cols >= 1,
                     tile == 8 || tile == 16 || tile == 32,
                     var("grid") == rule::ceil_div(cols, tile),
                     var("grid_y") == rule::ceil_div(rows, tile),
                     var("grid_z") == 1,
                     var("tpg") == tile * tile};
  k.sizes = {{"x", rows * cols}, {"y", rows * cols}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), cols = dim(s, "cols");
    const auto& x = t["x"];
    auto& y = t["y"];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < cols; ++c) y[c * rows + r] = x[r * cols + c];
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"cols", 1}}, {{"rows", 17}, {"cols", 33}}, {{"rows", 64}, {"cols", 48}}};
  return k;
}

}  // namespace mtile::lib
