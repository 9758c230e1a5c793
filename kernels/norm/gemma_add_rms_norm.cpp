// gemma_add_rms_norm: Gemma's pre-norm residual step, in place:
//   residual <- x + residual (rounded to T);  x <- residual * rsqrt(mean(residual^2) + eps) * (1 + w)
// As add_rms_norm, the stored (rounded) sum is what is normalised; 1 + w is formed in f32.
#include "kernels/norm/row_in_registers.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void gemma_add_rms_norm(InOut<T> x, InOut<T> residual, In<T> w, Scalar<f32> eps, Constexpr n) {
  rms_norm_row<T, NormForm::PreAdd, NormWeight::OnePlusW>(x, &residual, w, x, eps, n);
}

}  // namespace

KernelSpec gemma_add_rms_norm_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("gemma_add_rms_norm", ir::Mode::Reduction, {"x", "residual", "w", "eps", "n"},
                            MTILE_FLOAT_VARIANTS(gemma_add_rms_norm)),
      "Gemma's pre-norm residual step in place: residual += x; x = rmsnorm(residual) * (1 + w)", NormForm::PreAdd);
  k.sizes = norm_sizes({"x", "residual"}, false);
  k.reference = [](const Shape& s, HostTensors& t) { add_rms_norm_reference(s, t, "eps", 1.0, true); };
  k.test_shapes.push_back({{"rows", 3}, {"n", 3584}});
  k.bench_shapes = {{{"rows", 1}, {"n", 3584}},
                    {{"rows", 256}, {"n", 3584}},
                    {{"rows", 4096}, {"n", 2304}},
                    {{"rows", 4096}, {"n", 3584}},
                    {{"rows", 4096}, {"n", 4608}}};
  return k;
}

}  // namespace mtile::lib
