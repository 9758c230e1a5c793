// Attention: decoding (one query token per sequence against its KV cache) and prefill (causal,
// over a whole prompt).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec attention_decode_spec();
KernelSpec attention_prefill_spec();

// The float64 references' one query row: out[0 .. d) = softmax_r(scale * q . k[r]) @ v over rows
// r < keys of k and v (rows of d, from k[0] and v[0]); `score` holds at least `keys` values.
inline void attend_reference(const double* q, const double* k, const double* v, uint64_t keys, uint64_t d, double scale,
                             double* out, std::vector<double>& score) {
  double m = -INFINITY, sum = 0;
  for (uint64_t r = 0; r < keys; ++r) {
    double dot = 0;
    for (uint64_t i = 0; i < d; ++i) dot += q[i] * k[r * d + i];
    score[r] = scale * dot;
    m = std::max(m, score[r]);
  }
  for (uint64_t r = 0; r < keys; ++r) sum += score[r] = std::exp(score[r] - m);
  for (uint64_t i = 0; i < d; ++i) {
    double acc = 0;
    for (uint64_t r = 0; r < keys; ++r) acc += score[r] * v[r * d + i];
    out[i] = acc / sum;
  }
}
}  // namespace mtile::lib
