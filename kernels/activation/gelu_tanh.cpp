// gelu_tanh: the tanh approximation of GELU (torch's approximate='tanh', GPT-2, Gemma):
//   out = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
#include <cmath>

#include "kernels/activation/activation.hpp"
#include "kernels/activation/unary.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;

template <class T>
void gelu_tanh(In<T> x, Out<T> out, Constexpr n) {
  unary_body<T>(x, out, n, [](const Val& v) {
    Val inner = static_cast<float>(kSqrt2OverPi) * (v + static_cast<float>(kCubic) * v * v * v);
    return 0.5f * v * (1.0f + tanh(inner));
  });
}

}  // namespace

KernelSpec gelu_tanh_spec() {
  return unary_spec(
      define_generic_kernel("gelu_tanh", ir::Mode::Elementwise, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(gelu_tanh)),
      "GELU, tanh approximation: out = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))",
      [](double v) { return 0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v))); });
}

}  // namespace mtile::lib
