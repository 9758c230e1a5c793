// layer_norm_no_bias: out = (x - mean(x)) * rsqrt(var(x) + eps) * w, mean and variance in f32
// (layer_norm.hpp), for models whose LayerNorm has no bias.
#include "kernels/norm/layer_norm.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void layer_norm_no_bias(In<T> x, In<T> w, Out<T> out, Scalar<f32> eps, Constexpr n) {
  layer_norm_body<T>(x, w, nullptr, out, eps, n);
}

}  // namespace

KernelSpec layer_norm_no_bias_spec() {
  return layer_norm_spec_for(
      define_generic_kernel("layer_norm_no_bias", ir::Mode::Reduction, {"x", "w", "out", "eps", "n"},
                            MTILE_FLOAT_VARIANTS(layer_norm_no_bias)),
      "LayerNorm without bias, rows of any length: out = (x - mean) * rsqrt(var + eps) * w", false);
}

}  // namespace mtile::lib
