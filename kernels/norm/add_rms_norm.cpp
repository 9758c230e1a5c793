// add_rms_norm: the pre-norm residual step, in place (vLLM's and FlashInfer's fused_add_rms_norm):
//   residual <- x + residual;  x <- residual * rsqrt(mean(residual^2) + eps) * w
// The sum is rounded to T as it is stored, and the stored value is what is normalised (Hugging
// Face's order: the residual stream is a tensor of T); add_rms_norm_unrounded normalises the f32 sum.
#include "kernels/norm/row_in_registers.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void add_rms_norm(InOut<T> x, InOut<T> residual, In<T> w, In<f32> eps_buf, Constexpr n) {
  rms_norm_row<T, NormForm::PreAdd>(x, &residual, w, x, eps_buf, n);
}

}  // namespace

KernelSpec add_rms_norm_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("add_rms_norm", ir::Mode::Reduction, {"x", "residual", "w", "eps_buf", "n"},
                            MTILE_FLOAT_VARIANTS(add_rms_norm)),
      "pre-norm residual step in place: residual += x; x = rmsnorm(residual) * w", NormForm::PreAdd);
  k.sizes = norm_sizes({"x", "residual"});
  // The reference sees the sum as the kernel stores it: rounded to the dtype.
  k.reference = [](const Shape& s, HostTensors& t) { add_rms_norm_reference(s, t, "eps_buf", 0, true); };
  k.test_shapes.push_back({{"rows", 3}, {"n", 7168}});
  k.bench_shapes = hidden_state_bench_shapes();
  return k;
}

}  // namespace mtile::lib
