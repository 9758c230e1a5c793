// RMSNorm of rows of any length (mt_rms_norm_wide), and fused with the residual add
// (rms_norm_residual: the seed kernel's math without its n <= 4096 and n % 128 limits).
#include "kernels/norm/row_in_registers.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void mt_rms_norm_wide(In<T> x, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  rms_norm_row<T, NormForm::Plain>(x, nullptr, w, out, eps_buf, n);
}

template <class T>
void rms_norm_residual(In<T> x, In<T> residual, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  rms_norm_row<T, NormForm::PostResidual>(x, &residual, w, out, eps_buf, n);
}

}  // namespace

// What the strided norm specs share: contract, inputs, tolerances, test shapes.
KernelSpec strided_norm_spec(dsl::KernelDef def, std::string summary, NormForm form) {
  KernelSpec k;
  k.def = std::move(def);
  k.family = "norm";
  k.summary = std::move(summary);
  norm_row_contract(k, form);
  for (const ir::Param& p : k.def.params())  // eps as an In<f32> eps_buf or a Scalar<f32> eps
    if (p.name == "eps_buf" || p.name == "eps") k.inits[p.name] = Init::constant(1e-6);
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 32}, {"n", 8192}};
  k.test_shapes = {{{"rows", 3}, {"n", 1}},    {{"rows", 2}, {"n", 100}},   {{"rows", 4}, {"n", 4096}},
                   {{"rows", 2}, {"n", 8203}}, {{"rows", 2}, {"n", 16384}},  // weights read after the reduction (post)
                   {{"rows", 2}, {"n", 40000}}};                             // too long for registers: strided
  return k;
}

KernelSpec mt_rms_norm_wide_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("mt_rms_norm_wide", ir::Mode::Reduction, {"x", "w", "out", "eps_buf", "n"},
                            MTILE_FLOAT_VARIANTS(mt_rms_norm_wide)),
      "RMSNorm of rows of any length: rows in registers where they fit, else threads stride over them",
      NormForm::Plain);
  k.sizes = norm_sizes({"x", "out"});
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, false); };
  k.bench_shapes = {{{"rows", 4096}, {"n", 8192}}, {{"rows", 2048}, {"n", 16384}}};
  return k;
}

KernelSpec rms_norm_residual_spec() {
  KernelSpec k = strided_norm_spec(
      define_generic_kernel("rms_norm_residual", ir::Mode::Reduction, {"x", "residual", "w", "out", "eps_buf", "n"},
                            MTILE_FLOAT_VARIANTS(rms_norm_residual)),
      "fused RMSNorm + residual add (the seed's math) for rows of any length", NormForm::PostResidual);
  k.sizes = norm_sizes({"x", "residual", "out"});
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, true); };
  // Hidden sizes of current models, not multiples of 128 among them (issue 10; 16384 is above).
  for (uint32_t n : {1000u, 2880u, 5120u}) k.test_shapes.push_back({{"rows", 3}, {"n", n}});
  k.bench_shapes = hidden_state_bench_shapes();
  return k;
}

}  // namespace mtile::lib
