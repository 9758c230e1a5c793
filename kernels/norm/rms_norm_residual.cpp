// ffai_rms_norm_residual (the seed kernel): out = residual + w * x * rsqrt(mean(x^2) + eps).
// Each thread owns 4 consecutive elements of a row (N = TPG * 4); one threadgroup per row.
#include "kernels/norm/norm.hpp"
#include "kernels/norm/rms_norm_4wide.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: ffai_rms_norm_residual
template <class T>
void ffai_rms_norm_residual(In<T> x, In<T> residual, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  Val row = program_id(0);
  Val rs = row * n;
  // Out-of-bounds lanes re-read row[0..3] (benign: their sum of squares is masked to 0) and
  // skip their stores, mirroring mt_rms_norm's freeze-safe guard.
  Val col = tid() * 4u;
  Val in_bounds = col + 3u < n;
  Val safe_col = select(in_bounds, col, lit(0u));
  Val safe_base = rs + safe_col;
  Val base = rs + col;
  Val x0 = load<f32>(x[safe_base]);
  Val x1 = load<f32>(x[safe_base + 1u]);
  Val x2 = load<f32>(x[safe_base + 2u]);
  Val x3 = load<f32>(x[safe_base + 3u]);
  // residual and w are read here, before the reduction's barriers, so that their latency
  // overlaps it (through the same safe indices: masked lanes read row[0..3] and discard it).
  Val r0 = load<f32>(residual[safe_base]);
  Val r1 = load<f32>(residual[safe_base + 1u]);
  Val r2 = load<f32>(residual[safe_base + 2u]);
  Val r3 = load<f32>(residual[safe_base + 3u]);
  Val w0 = load<f32>(w[safe_col]);
  Val w1 = load<f32>(w[safe_col + 1u]);
  Val w2 = load<f32>(w[safe_col + 2u]);
  Val w3 = load<f32>(w[safe_col + 3u]);
  Val raw_ssq = x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3;
  Val partial_ssq = select(in_bounds, raw_ssq, lit(0.0f));
  // Cross-kernel call: inline_calls splices mt_rms_inv_scalar's body here.
  Val rms = call(mt_rms_inv_scalar_def(), {partial_ssq, eps_buf, n});
  if_(in_bounds, [&] {
    store(out[base], (r0 + x0 * rms * w0).cast<T>());
    store(out[base + 1u], (r1 + x1 * rms * w1).cast<T>());
    store(out[base + 2u], (r2 + x2 * rms * w2).cast<T>());
    store(out[base + 3u], (r3 + x3 * rms * w3).cast<T>());
  });
}
// doc-snippet-end

}  // namespace

KernelSpec ffai_rms_norm_residual_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("ffai_rms_norm_residual", ir::Mode::Reduction,
                                {"x", "residual", "w", "out", "eps_buf", "n"},
                                MTILE_FLOAT_VARIANTS(ffai_rms_norm_residual));
  k.family = "norm";
  k.summary = "fused RMSNorm + residual add: out = residual + w * x * rsqrt(mean(x^2) + eps)";
  four_per_thread_contract(k);
  k.sizes = norm_sizes({"x", "residual", "out"});
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, true); };
  return k;
}

}  // namespace mtile::lib
