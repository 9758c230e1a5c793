// mt_rms_norm_small: RMSNorm of short rows (head_dim <= 64), one simdgroup per row, 2 elements a
// thread. The sum of squares goes down a shuffle tree to lane 0, which shares it through
// threadgroup memory: no threadgroup-wide reduction for a single simdgroup.
#include "kernels/norm/huge_rows.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void mt_rms_norm_small(In<T> x, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  Val lane = tid();
  Val col = lane * 2u;
  Val in_bounds = col + 1u < n;
  Val rs = program_id(0) * n;
  Val safe = rs + select(in_bounds, col, lit(0u));
  Val x0 = load<f32>(x[safe]);
  Val x1 = load<f32>(x[safe + 1u]);
  Var ssq(select(in_bounds, x0 * x0 + x1 * x1, lit(0.0f)));
  for (uint32_t offset = 16; offset > 0; offset /= 2)  // unrolled at trace time
    ssq = ssq + simd_shuffle_down(ssq, offset);
  TgArray total = threadgroup_array<f32>(1);
  if_(lane == 0u, [&] { store(total[0u], ssq.get()); });
  barrier();
  Val rms = rsqrt(load(total[0u]) / n.cast<f32>() + load(eps_buf[0u]));
  if constexpr (sum_of_squares_can_overflow<T>) {
    auto each_element = [&](const auto& fn) {
      for (const Val& v : {x0, x1}) fn(select(in_bounds, v, lit(0.0f)));
    };
    rms = rescue_huge_row(rms, each_element, eps_buf, n);
  }
  if_(in_bounds, [&] {
    Val base = rs + col;
    store(out[base], cast<T>(x0 * rms * load<f32>(w[col])));
    store(out[base + 1u], cast<T>(x1 * rms * load<f32>(w[col + 1u])));
  });
}

}  // namespace

KernelSpec mt_rms_norm_small_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("mt_rms_norm_small", ir::Mode::Reduction, {"x", "w", "out", "eps_buf", "n"},
                                MTILE_FLOAT_VARIANTS(mt_rms_norm_small));
  k.family = "norm";
  k.summary = "RMSNorm of rows of at most 64 (attention heads): one simdgroup a row, 2 elements a thread";
  using rule::var;
  rule::Expr n = var("n");
  k.dims = {"rows", "n"};
  k.dispatch = {.grid = var("rows"), .tpg = var("simd_width")};
  k.preconditions = spec::one_threadgroup_per_row();
  for (const rule::Expr& e : {n % 2 == 0, n >= 2, n <= 64, var("tpg") == 32}) k.preconditions.push_back(e);
  k.sizes = norm_sizes({"x", "out"});
  k.inits = {{"eps_buf", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, false); };
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 256}, {"n", 64}};
  k.test_shapes = {{{"rows", 4}, {"n", 64}}, {{"rows", 3}, {"n", 48}}, {{"rows", 1}, {"n", 2}}};
  k.bench_shapes = {{{"rows", 65536}, {"n", 64}}};
  return k;
}

}  // namespace mtile::lib
