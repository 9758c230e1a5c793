// gelu: out = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), the exact GELU (torch's approximate='none');
// gelu_tanh is the tanh approximation.
#include <cmath>

#include "kernels/activation/activation.hpp"
#include "kernels/activation/unary.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr double kInvSqrt2 = 0.70710678118654752440;

template <class T>
void gelu(In<T> x, Out<T> out, Constexpr n) {
  unary_body<T>(x, out, n, [](const Val& v) { return 0.5f * v * (1.0f + erf(v * static_cast<float>(kInvSqrt2))); });
}

}  // namespace

KernelSpec gelu_spec() {
  return unary_spec(define_generic_kernel("gelu", ir::Mode::Elementwise, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(gelu)),
                    "exact GELU: out = 0.5 x (1 + erf(x / sqrt(2)))",
                    [](double v) { return 0.5 * v * (1.0 + std::erf(v * kInvSqrt2)); });
}

}  // namespace mtile::lib
