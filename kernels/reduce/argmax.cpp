// argmax: out[r] = the index of the largest value of row r (u32), rows of any length. Ties go to
// the lowest index; NaN values are skipped (a row of NaN only gives 0).
// Each thread keeps its best value and index over its columns, which it visits in increasing
// order (so a strict > keeps the lowest index of a tie); the threadgroup takes the largest value,
// then the lowest index among the threads that hold it.
#include <cmath>

#include "kernels/reduce/reduce.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kChunk = 8;
constexpr uint32_t kNone = 0xffffffffu;  // no index yet

template <class T>
void argmax(In<T> x, Out<u32> out, Constexpr n) {
  Val base = named("row_start", program_id(0) * n);
  // NaN at first: any value replaces it, a NaN never replaces a number (comparisons with NaN fail).
  Var best("best", lit(NAN)), best_at("best_at", lit(kNone));
  for_row_chunks(tid(), lsize(), n, kChunk, [&](Val c, uint32_t count) {
    std::vector<Val> v;
    for (uint32_t k = 0; k < count; ++k) v.push_back(load<f32>(x[column(base + c, k)]));
    for (uint32_t k = 0; k < count; ++k) {
      Val take = v[k] > best || isnan(best);
      best = select(take, v[k], best);
      best_at = select(take, column(c, k), best_at);
    }
  });
  Val row_max = named("row_max", reduce_max(best.get()));  // NaN only where every thread has NaN
  Val first = named("first_at", reduce_min(select(best == row_max, best_at, lit(kNone))));
  if_(tid() == 0u, [&] { store(out[program_id(0)], select(first == kNone, lit(0u), first)); });
}

}  // namespace

KernelSpec argmax_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("argmax", ir::Mode::Reduction, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(argmax));
  k.family = "reduce";
  k.summary = "index of the largest value of each row (u32; ties: the lowest index)";
  strided_row_contract(k);
  k.sizes = {{"x", rule::var("rows") * rule::var("n")}, {"out", rule::var("rows")}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    for (uint64_t r = 0; r < rows; ++r) {
      uint64_t at = 0;
      bool found = false;
      for (uint64_t i = 0; i < n; ++i)
        if (!std::isnan(x[r * n + i]) && (!found || x[r * n + i] > x[r * n + at])) at = i, found = true;
      t["out"][r] = static_cast<double>(at);
    }
  };
  // A selection is exact; bf16 and f16 inputs have ties (their grids are coarse), which check the
  // lowest-index rule.
  k.tolerance = {{ScalarType::f32, {0, 0, 0}}, {ScalarType::f16, {0, 0, 0}}, {ScalarType::bf16, {0, 0, 0}}};
  k.example_shape = {{"rows", 32}, {"n", 128256}};
  k.test_shapes = {{{"rows", 3}, {"n", 1}},
                   {{"rows", 5}, {"n", 77}},
                   {{"rows", 3}, {"n", 1000}},
                   {{"rows", 2}, {"n", 9001}},
                   {{"rows", 1}, {"n", 32000}}};
  k.bench_shapes = {{{"rows", 1}, {"n", 128256}}, {{"rows", 32}, {"n", 128256}}, {{"rows", 256}, {"n", 151936}}};
  return k;
}

}  // namespace mtile::lib
