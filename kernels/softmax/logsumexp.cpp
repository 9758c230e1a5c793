// logsumexp: out[r] = log(sum(exp(x[r, :]))) = max + log(sum(exp(x[r, :] - max))), per row of any
// length, in f32 (online_softmax.hpp: one read of the row). A row of -inf only gives -inf.
#include <algorithm>
#include <cmath>

#include "kernels/softmax/online_softmax.hpp"
#include "kernels/softmax/softmax.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void logsumexp(In<T> x, Out<f32> out, Constexpr n) {
  RowMaxSum row = online_max_sum(x, named("row_start", program_id(0) * n), n, 8);
  if_(tid() == 0u, [&] { store(out[program_id(0)], row.shift + log(row.sum)); });
}

}  // namespace

KernelSpec logsumexp_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("logsumexp", ir::Mode::Reduction, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(logsumexp));
  k.family = "softmax";
  k.summary = "log(sum(exp(x))) of each row of any length, in f32";
  strided_row_contract(k);
  k.sizes = {{"x", rule::var("rows") * rule::var("n")}, {"out", rule::var("rows")}};
  k.inits = {{"x", Init::uniform(-4.0, 4.0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    for (uint64_t r = 0; r < rows; ++r) {
      double m = -INFINITY, sum = 0;
      for (uint64_t i = 0; i < n; ++i) m = std::max(m, x[r * n + i]);
      for (uint64_t i = 0; i < n; ++i) sum += std::exp(x[r * n + i] - m);
      t["out"][r] = m + std::log(sum);
    }
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 64}, {"n", 4096}};
  k.test_shapes = {{{"rows", 3}, {"n", 1}},
                   {{"rows", 4}, {"n", 77}},
                   {{"rows", 3}, {"n", 1000}},
                   {{"rows", 2}, {"n", 9000}},
                   {{"rows", 1}, {"n", 32000}}};
  k.bench_shapes = {{{"rows", 1}, {"n", 128256}}, {{"rows", 32}, {"n", 128256}}, {{"rows", 4096}, {"n", 4096}}};
  return k;
}

}  // namespace mtile::lib
