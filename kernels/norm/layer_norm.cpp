// layer_norm: out = (x - mean(x)) * rsqrt(var(x) + eps) * w + b over rows of any length, mean and
// variance in f32 (layer_norm.hpp); layer_norm_no_bias leaves out b.
#include "kernels/norm/layer_norm.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void layer_norm(In<T> x, In<T> w, In<T> b, Out<T> out, Scalar<f32> eps, Constexpr n) {
  layer_norm_body<T>(x, w, &b, out, eps, n);
}

}  // namespace

KernelSpec layer_norm_spec() {
  return layer_norm_spec_for(
      define_generic_kernel("layer_norm", ir::Mode::Reduction, {"x", "w", "b", "out", "eps", "n"},
                            MTILE_FLOAT_VARIANTS(layer_norm)),
      "LayerNorm of rows of any length: out = (x - mean) * rsqrt(var + eps) * w + b", true);
}

}  // namespace mtile::lib
