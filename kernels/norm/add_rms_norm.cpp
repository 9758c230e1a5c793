// add_rms_norm: the pre-norm residual step, in place (vLLM's and FlashInfer's fused_add_rms_norm):
//   residual <- x + residual;  x <- residual * rsqrt(mean(residual^2) + eps) * w
// The sum is rounded to T as it is stored, and the stored value is what is normalised.
#include <cmath>

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
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    auto &x = t["x"], &residual = t["residual"];
    const auto& w = t["w"];
    const double eps = t["eps_buf"][0];
    for (uint64_t r = 0; r < rows; ++r) {
      double ssq = 0;
      for (uint64_t i = 0; i < n; ++i) {
        double sum = t.round(x[r * n + i] + residual[r * n + i]);
        residual[r * n + i] = sum;
        ssq += sum * sum;
      }
      double inv = 1.0 / std::sqrt(ssq / static_cast<double>(n) + eps);
      for (uint64_t i = 0; i < n; ++i) x[r * n + i] = residual[r * n + i] * inv * w[i];
    }
  };
  k.test_shapes.push_back({{"rows", 3}, {"n", 7168}});
  k.bench_shapes = {{{"rows", 1}, {"n", 4096}},    {{"rows", 32}, {"n", 4096}},    {{"rows", 256}, {"n", 4096}},
                    {{"rows", 2048}, {"n", 4096}}, {{"rows", 16384}, {"n", 4096}}, {{"rows", 4096}, {"n", 5120}},
                    {{"rows", 4096}, {"n", 7168}}, {{"rows", 4096}, {"n", 8192}},  {{"rows", 2048}, {"n", 16384}}};
  return k;
}

}  // namespace mtile::lib
