// gemma_rms_norm: out = x * rsqrt(mean(x^2) + eps) * (1 + w), rows of any length. Gemma's
// checkpoints store the weight minus one; 1 + w is formed in f32, as Hugging Face's Gemma does.
#include "kernels/norm/row_in_registers.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void gemma_rms_norm(In<T> x, In<T> w, Out<T> out, Scalar<f32> eps, Constexpr n) {
  rms_norm_row<T, NormForm::Plain, NormWeight::OnePlusW>(x, nullptr, w, out, eps, n);
}

}  // namespace

KernelSpec gemma_rms_norm_spec() {
  KernelSpec k =
      strided_norm_spec(define_generic_kernel("gemma_rms_norm", ir::Mode::Reduction, {"x", "w", "out", "eps", "n"},
                                              MTILE_FLOAT_VARIANTS(gemma_rms_norm)),
                        "Gemma's RMSNorm: out = x * rsqrt(mean(x^2) + eps) * (1 + w)", NormForm::Plain);
  k.sizes = norm_sizes({"x", "out"}, false);
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, false, "eps", 1.0); };
  k.test_shapes.push_back({{"rows", 3}, {"n", 2304}});
  // Gemma 2's hidden sizes: 2304 (2B), 3584 (9B), 4608 (27B).
  k.bench_shapes = {{{"rows", 1}, {"n", 3584}},
                    {{"rows", 256}, {"n", 3584}},
                    {{"rows", 4096}, {"n", 2304}},
                    {{"rows", 4096}, {"n", 3584}},
                    {{"rows", 4096}, {"n", 4608}}};
  return k;
}

}  // namespace mtile::lib
