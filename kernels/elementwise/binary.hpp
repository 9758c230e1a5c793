// The body and spec shared by the elementwise binary kernels (add, mul): c = op(a, b) over n
// elements in f32, rounded once to T; 8 elements a thread (spec_helpers.hpp's chunked_elementwise_contract).
#pragma once
#include <vector>

#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

template <class T, class Op>
void binary_body(const dsl::Tensor& a, const dsl::Tensor& b, const dsl::Tensor& c, const dsl::Constexpr& n, Op op) {
  using namespace dsl;
  const uint32_t per_thread = config("per_thread");
  Val at = named("at", (program_id(0) * lsize() + tid()) * per_thread);
  visit_chunk(at, n, per_thread, [&](Val i, uint32_t count) {
    std::vector<Val> outs;
    for (uint32_t j = 0; j < count; ++j) outs.push_back(op(load<f32>(a[column(i, j)]), load<f32>(b[column(i, j)])));
    for (uint32_t j = 0; j < count; ++j) store(c[column(i, j)], outs[j].cast<T>());
  });
}

template <class Op>
KernelSpec binary_spec(dsl::KernelDef def, std::string summary, Op op) {
  KernelSpec k;
  k.def = std::move(def);
  k.family = "elementwise";
  k.summary = std::move(summary);
  chunked_elementwise_contract(k);
  rule::Expr n = rule::var("n");
  k.sizes = {{"a", n}, {"b", n}, {"c", n}};
  k.reference = [op](const Shape& s, HostTensors& t) {
    const auto &a = t["a"], &b = t["b"];
    auto& c = t["c"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i) c[i] = op(a[i], b[i]);
  };
  return k;
}

}  // namespace mtile::lib
