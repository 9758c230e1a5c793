// A row's max and sum of exponentials in one read (the online softmax): each thread keeps a
// running max m and a sum s of exp(x - m) over its chunks, rescaling s when m grows; the
// threadgroup then combines them. Columns past n are masked loads that give -inf (exp of which is
// 0), so any n needs no tail loop. A shift of -inf (a row, chunk or thread of -inf values only)
// is replaced by 0, so exp never sees -inf - -inf: such a row has max -inf and sum 0.
#pragma once
#include <cmath>
#include <vector>

#include "kernels/row_loops.hpp"

namespace mtile::lib {

struct RowMaxSum {
  dsl::Val shift;  // the row's max, or 0 when it is -inf
  dsl::Val sum;    // sum of exp(x - shift) over the row
};

// x[base + c + j] for j < count, with -inf past n.
inline std::vector<dsl::Val> masked_chunk(const dsl::Tensor& x, const dsl::Val& base, const dsl::Val& c,
                                          const dsl::Val& n, uint32_t count) {
  using namespace dsl;
  std::vector<Val> v;
  for (uint32_t j = 0; j < count; ++j) v.push_back(load<f32>(x[column(base + c, j)], column(c, j) < n, lit(-INFINITY)));
  return v;
}

inline dsl::Val finite_shift(const dsl::Val& m) {
  using namespace dsl;
  return select(m == -INFINITY, lit(0.0f), m);
}

inline RowMaxSum online_max_sum(const dsl::Tensor& x, const dsl::Val& base, const dsl::Val& n, uint32_t chunk) {
  using namespace dsl;
  Var m("run_max", lit(-INFINITY)), s("run_sum", lit(0.0f));
  for_(tid() * chunk, n, lsize() * chunk, [&](Val c) {
    std::vector<Val> v = masked_chunk(x, base, c, n, chunk);
    Val chunk_max = v[0];
    for (uint32_t j = 1; j < chunk; ++j) chunk_max = max(chunk_max, v[j]);
    Val m_new = max(m, chunk_max), shift = finite_shift(m_new);
    Val acc = s * exp(m - shift);
    for (uint32_t j = 0; j < chunk; ++j) acc = acc + exp(v[j] - shift);
    s = acc;
    m = m_new;
  });
  Val shift = named("row_shift", finite_shift(reduce_max(m.get())));
  return {shift, named("row_sum", reduce_sum(s * exp(m - shift)))};
}

}  // namespace mtile::lib
