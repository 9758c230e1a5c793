// example_scan_rows: for each row of x, one thread a row, `first` is the index of its first
// element above `limit` (n where none is) and `sum` the sum of its positive elements before it.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: scan_rows
template <class T>
void example_scan_rows(In<T> x, Out<u32> first, Out<f32> sum, Scalar<f32> limit, Constexpr rows, Constexpr n) {
  Val row = program_id(0) * lsize() + tid();
  if_(row >= rows, [] { return_(); });          // a thread past the last row ends here
  Val start = row.cast<u64>() * n.cast<u64>();  // u64 offsets: x may pass 2^32 elements
  Var j(lit(uint64_t{0})), acc(lit(0.0f));
  while_([&] { return j.get() < n.cast<u64>(); },
         [&] {
           Val v = load<f32>(x[start + j.get()]);
           if_(v > limit, [] { break_(); });  // leaves the loop with j at this element
           j = j.get() + 1u;
           if_(v <= 0.0f, [] { continue_(); });  // on to the next element: acc skips this one
           acc += v;
         });
  store(first[row], j.get().cast<u32>());
  store(sum[row], acc.get());
}
// doc-snippet-end

}  // namespace

KernelSpec example_scan_rows_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("example_scan_rows", ir::Mode::Elementwise, {"x", "first", "sum", "limit", "rows", "n"},
                                MTILE_FLOAT_VARIANTS(example_scan_rows));
  k.family = "examples";
  k.summary = "per row: the first element above a limit, the sum of positives before it (while_, break_, ...)";
  using rule::var;
  rule::Expr rows = var("rows"), n = var("n");
  k.dims = {"rows", "n"};
  k.config = {{"threads", 64}};
  k.dispatch = {.grid = rule::ceil_div(rows, var("threads")), .tpg = var("threads")};
  k.preconditions = {rows >= 1, var("grid") * var("tpg") >= rows, var("grid_y") == 1, var("grid_z") == 1};
  k.sizes = {{"x", rows * n}, {"first", rows}, {"sum", rows}};
  k.inits = {{"limit", Init::constant(0.9)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    const double limit = t["limit"][0];
    auto &first = t["first"], &sum = t["sum"];
    for (uint64_t r = 0; r < rows; ++r) {
      uint64_t j = 0;
      double acc = 0;
      for (; j < n && x[r * n + j] <= limit; ++j)
        if (x[r * n + j] > 0) acc += x[r * n + j];
      first[r] = static_cast<double>(j);
      sum[r] = acc;
    }
  };
  k.tolerance = float_tolerances();
  k.test_shapes = {{{"rows", 1}, {"n", 1}}, {{"rows", 70}, {"n", 40}}, {{"rows", 5}, {"n", 300}}};
  return k;
}

}  // namespace mtile::lib
