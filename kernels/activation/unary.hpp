// The body and spec shared by the elementwise activations (gelu, gelu_tanh): out = f(x) over n
// elements, f in f32 and rounded once to T; 8 elements a thread (chunked_elementwise_contract).
#pragma once
#include <vector>

#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

template <class T, class F>
void unary_body(const dsl::Tensor& x, const dsl::Tensor& out, const dsl::Constexpr& n, F f) {
  using namespace dsl;
  const uint32_t per_thread = config("per_thread");
  Val at = named("at", (program_id(0) * lsize() + tid()) * per_thread);
  visit_chunk(at, n, per_thread, [&](Val i, uint32_t count) {
    std::vector<Val> outs;
    for (uint32_t j = 0; j < count; ++j) outs.push_back(f(load<f32>(x[column(i, j)])));
    for (uint32_t j = 0; j < count; ++j) store(out[column(i, j)], outs[j].cast<T>());
  });
}

template <class F>
KernelSpec unary_spec(dsl::KernelDef def, std::string summary, F f) {
  KernelSpec k;
  k.def = std::move(def);
  k.family = "activation";
  k.summary = std::move(summary);
  chunked_elementwise_contract(k);
  k.sizes = {{"x", rule::var("n")}, {"out", rule::var("n")}};
  k.inits = {{"x", Init::uniform(-4.0, 4.0)}};  // both tails and the bend between them
  k.reference = [f](const Shape& s, HostTensors& t) {
    for (uint64_t i = 0; i < dim(s, "n"); ++i) t["out"][i] = f(t["x"][i]);
  };
  return k;
}

}  // namespace mtile::lib
