// top_k: the k largest values of each row of any length and their indices, sorted by value,
// largest first; equal values in index order (the lower index first). NaN values are never
// selected: a row with fewer than k other values fills the rest with -inf and index 0xffffffff.
//   values[r, j], indices[r, j] (u32) for j < k, k <= 64
// k rounds, each a pass over the row (from L2 after the first) that finds the best element after
// the previous round's in the order (value descending, index ascending): each thread its best,
// then the threadgroup's. O(k n) work: meant for the small k of sampling, not for k near n.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/reduce/reduce.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kChunk = 8;
constexpr uint32_t kNone = 0xffffffffu;  // no index

template <class T>
void top_k(In<T> x, Out<T> values, Out<u32> indices, Constexpr n, Constexpr k) {
  Val base = named("row_start", program_id(0) * n);
  Val out_start = named("out_start", program_id(0) * k);
  Var prev("prev", lit(INFINITY)), prev_at("prev_at", lit(kNone));
  for_(0u, k, 1u, [&](Val j) {
    Var best("best", lit(-INFINITY)), best_at("best_at", lit(kNone));
    for_row_chunks(tid(), lsize(), n, kChunk, [&](Val c, uint32_t count) {
      std::vector<Val> v;
      for (uint32_t e = 0; e < count; ++e) v.push_back(load<f32>(x[column(base + c, e)]));
      for (uint32_t e = 0; e < count; ++e) {
        Val at = column(c, e);
        // After the previous pick: smaller, or equal and later. Round 0 takes every value.
        Val after = j == 0u || v[e] < prev || (v[e] == prev && at > prev_at);
        // Better than this thread's best so far; columns come in increasing order, so a tie with
        // an index already held loses, and -inf wins only over no index at all.
        Val better = v[e] > best || (v[e] == best && best_at == kNone);
        Val take = after && better;
        best = select(take, v[e], best);
        best_at = select(take, at, best_at);
      }
    });
    Val top = named("top", reduce_max(best.get()));
    Val top_at = named("top_at", reduce_min(select(best == top && best_at != kNone, best_at, lit(kNone))));
    if_(tid() == 0u, [&] {
      store(values[out_start + j], cast<T>(top));
      store(indices[out_start + j], top_at);
    });
    prev = top;
    prev_at = top_at;
  });
}

}  // namespace

KernelSpec top_k_spec() {
  KernelSpec s;
  s.def = define_generic_kernel("top_k", ir::Mode::Reduction, {"x", "values", "indices", "n", "k"},
                                MTILE_FLOAT_VARIANTS(top_k));
  s.family = "reduce";
  s.summary = "the k <= 64 largest values of each row and their u32 indices, largest first (ties: lower index)";
  using rule::var;
  strided_row_contract(s);
  s.dims = {"rows", "n", "k"};
  for (const rule::Expr& e : {var("k") >= 1, var("k") <= 64, var("k") <= var("n")}) s.preconditions.push_back(e);
  rule::Expr picks = var("rows") * var("k");
  s.sizes = {{"x", var("rows") * var("n")}, {"values", picks}, {"indices", picks}};
  s.reference = [](const Shape& sh, HostTensors& t) {
    uint64_t rows = dim(sh, "rows"), n = dim(sh, "n"), k = dim(sh, "k");
    const auto& x = t["x"];
    for (uint64_t r = 0; r < rows; ++r) {
      std::vector<uint64_t> order;
      for (uint64_t i = 0; i < n; ++i)
        if (!std::isnan(x[r * n + i])) order.push_back(i);
      auto first = [&](uint64_t a, uint64_t b) {
        return x[r * n + a] > x[r * n + b] || (x[r * n + a] == x[r * n + b] && a < b);
      };
      std::partial_sort(order.begin(), order.begin() + std::min<size_t>(k, order.size()), order.end(), first);
      for (uint64_t j = 0; j < k; ++j) {
        bool have = j < order.size();
        t["values"][r * k + j] = have ? x[r * n + order[j]] : -INFINITY;
        t["indices"][r * k + j] = have ? static_cast<double>(order[j]) : static_cast<double>(kNone);
      }
    }
  };
  // Selections are exact (values are copies of inputs); bf16 and f16 inputs have many ties.
  s.tolerance = {{ScalarType::f32, {0, 0, 0}}, {ScalarType::f16, {0, 0, 0}}, {ScalarType::bf16, {0, 0, 0}}};
  // A decode batch over a 32000-token vocabulary: `mtile run` on the CPU engine in seconds (k
  // passes over each row); the bench shapes are the full vocabularies.
  s.example_shape = {{"rows", 8}, {"n", 32000}, {"k", 50}};
  s.test_shapes = {{{"rows", 3}, {"n", 1}, {"k", 1}},
                   {{"rows", 5}, {"n", 77}, {"k", 8}},
                   {{"rows", 3}, {"n", 1000}, {"k", 64}},
                   {{"rows", 1}, {"n", 64}, {"k", 64}},
                   {{"rows", 2}, {"n", 9001}, {"k", 5}}};
  s.bench_shapes = {{{"rows", 1}, {"n", 128256}, {"k", 50}},
                    {{"rows", 32}, {"n", 128256}, {"k", 50}},
                    {{"rows", 256}, {"n", 151936}, {"k", 8}}};
  return s;
}

}  // namespace mtile::lib
