// add_rms_norm_unrounded: add_rms_norm's pre-norm residual step, normalising the sum before it is
// rounded to T:
//   s = x + residual in f32;  residual <- s rounded to T;  x <- s * rsqrt(mean(s^2) + eps) * w
// For frameworks that take the variance of the f32 sum (issue 10 names vLLM); add_rms_norm
// normalises the stored sum instead. The stored residual is the same; x differs by about one
// rounding of T. Rows in registers hold the f32 sum; the strided body's second pass adds x and
// residual again (its reads come from L2), since the stored sum has lost the bits it needs.
#include "kernels/norm/row_in_registers.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void add_rms_norm_unrounded(InOut<T> x, InOut<T> residual, In<T> w, Scalar<f32> eps, Constexpr n) {
  rms_norm_row<T, NormForm::PreAddUnrounded>(x, &residual, w, x, eps, n);
}

}  // namespace

KernelSpec add_rms_norm_unrounded_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("add_rms_norm_unrounded", ir::Mode::Reduction, {"x", "residual", "w", "eps", "n"},
                            MTILE_FLOAT_VARIANTS(add_rms_norm_unrounded)),
      "add_rms_norm that normalises the f32 sum x + residual before rounding it to T", NormForm::PreAddUnrounded);
  k.sizes = norm_sizes({"x", "residual"}, false);
  k.reference = [](const Shape& s, HostTensors& t) { add_rms_norm_reference(s, t, "eps", 0, false); };
  k.test_shapes.push_back({{"rows", 3}, {"n", 7168}});
  k.bench_shapes = hidden_state_bench_shapes();
  return k;
}

}  // namespace mtile::lib
