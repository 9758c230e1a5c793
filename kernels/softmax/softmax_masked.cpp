// softmax_masked: softmax of rows of any length, out[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)),
// written with masked loads and stores instead of a tail loop: threads take chunks of 8 columns
// and the columns of a chunk past n are masked off (loads give -inf). One read of the row finds
// its max and sum together (online_softmax.hpp), a second writes the output.
#include <cmath>

#include "kernels/softmax/online_softmax.hpp"
#include "kernels/softmax/softmax.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kChunk = 8;

template <class T>
void softmax_masked(In<T> x, Out<T> out, Constexpr n) {
  Val base = named("row_start", program_id(0) * n);
  RowMaxSum row = online_max_sum(x, base, n, kChunk);
  Val inv_sum = named("inv_sum", 1.0f / row.sum);
  for_(tid() * kChunk, n, lsize() * kChunk, [&](Val c) {
    std::vector<Val> v = masked_chunk(x, base, c, n, kChunk);
    for (uint32_t j = 0; j < kChunk; ++j)
      store(out[column(base + c, j)], cast<T>(exp(v[j] - row.shift) * inv_sum), column(c, j) < n);
  });
}

}  // namespace

KernelSpec softmax_masked_spec() {
  KernelSpec k = softmax_spec();
  k.def = define_generic_kernel("softmax_masked", ir::Mode::Reduction, {"x", "out", "n"},
                                MTILE_FLOAT_VARIANTS(softmax_masked));
  k.summary = "row-wise softmax of rows of any length, with masked loads and stores (no tail loop)";
  k.test_shapes.push_back({{"rows", 3}, {"n", 8}});
  k.test_shapes.push_back({{"rows", 1}, {"n", 32000}});
  k.bench_shapes.push_back({{"rows", 32}, {"n", 128256}});
  return k;
}

}  // namespace mtile::lib
