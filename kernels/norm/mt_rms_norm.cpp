// mt_rms_norm: out = w * x * rsqrt(mean(x^2) + eps); 4 elements a thread, one threadgroup per row.
#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/norm/rms_norm_4wide.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void mt_rms_norm(In<T> x, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  Val rs = program_id(0) * n;
  Val col = tid() * 4u;
  Val in_bounds = col + 3u < n;
  Val safe_col = select(in_bounds, col, lit(0u));  // freeze-safe: masked lanes read row[0..3]
  Val safe_base = rs + safe_col;
  Val base = rs + col;
  Val x0 = load<f32>(x[safe_base]);
  Val x1 = load<f32>(x[safe_base + 1u]);
  Val x2 = load<f32>(x[safe_base + 2u]);
  Val x3 = load<f32>(x[safe_base + 3u]);
  // w is read before the reduction's barriers so that its latency overlaps them.
  Val w0 = load<f32>(w[safe_col]);
  Val w1 = load<f32>(w[safe_col + 1u]);
  Val w2 = load<f32>(w[safe_col + 2u]);
  Val w3 = load<f32>(w[safe_col + 3u]);
  Val partial_ssq = select(in_bounds, x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3, lit(0.0f));
  Val rms = call(mt_rms_inv_scalar_def(), {partial_ssq, eps_buf, n});
  if constexpr (sum_of_squares_can_overflow<T>) {
    auto each_element = [&](const auto& fn) {
      for (const Val& v : {x0, x1, x2, x3}) fn(select(in_bounds, v, lit(0.0f)));
    };
    rms = rescue_huge_row(rms, each_element, eps_buf, n);
  }
  if_(in_bounds, [&] {
    store(out[base], (x0 * rms * w0).cast<T>());
    store(out[base + 1u], (x1 * rms * w1).cast<T>());
    store(out[base + 2u], (x2 * rms * w2).cast<T>());
    store(out[base + 3u], (x3 * rms * w3).cast<T>());
  });
}

}  // namespace

KernelSpec mt_rms_norm_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("mt_rms_norm", ir::Mode::Reduction, {"x", "w", "out", "eps_buf", "n"},
                                MTILE_FLOAT_VARIANTS(mt_rms_norm));
  k.family = "norm";
  k.summary = "RMSNorm: out = w * x * rsqrt(mean(x^2) + eps), 4 elements a thread";
  four_per_thread_contract(k);
  k.sizes = norm_sizes({"x", "out"});
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, false); };
  return k;
}

}  // namespace mtile::lib
