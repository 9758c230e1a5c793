// mt_rms_norm_wide: RMSNorm of rows of any length; threads stride over the row, accumulate the
// sum of squares in a local, and share mt_rms_inv_scalar with the rest of the family.
#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void mt_rms_norm_wide(In<T> x, In<T> w, Out<T> out, In<f32> eps_buf, Constexpr n) {
  Val base = program_id(0) * n;
  Var ssq(lit(0.0f));
  for_(tid(), n, lsize(), [&](Val i) {
    Val v = load<f32>(x[base + i]);
    ssq = fma(v, v, ssq);
  });
  Val rms = call(mt_rms_inv_scalar_def(), {ssq.get(), eps_buf, n});
  for_(tid(), n, lsize(), [&](Val i) {
    Val v = load<f32>(x[base + i]) * rms * load<f32>(w[i]);
    store(out[base + i], v.cast<T>());
  });
}

}  // namespace

KernelSpec mt_rms_norm_wide_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("mt_rms_norm_wide", ir::Mode::Reduction, {"x", "w", "out", "eps_buf", "n"},
                                MTILE_FLOAT_VARIANTS(mt_rms_norm_wide));
  k.family = "norm";
  k.summary = "RMSNorm of rows of any length: threads stride over the row";
  k.dims = {"rows", "n"};
  k.dispatch_rule = "grid = rows, tpg = min(1024, max(32, round_up(ceil(n / 8), 32)))";
  k.dispatch = [](const Shape& s) {
    Geometry g;
    g.grid[0] = dim(s, "rows");
    g.tpg = strided_row_threads(dim(s, "n"));
    return g;
  };
  k.preconditions = {{"n >= 1", {"n"}, [](const auto& v) { return v.at("n") >= 1; }}};
  k.constexprs = [](const Shape& s) { return std::map<std::string, uint32_t>{{"n", dim(s, "n")}}; };
  k.elements = [](const std::string& p, const Shape& s) -> uint64_t {
    if (p == "w") return dim(s, "n");
    if (p == "eps_buf") return 1;
    return uint64_t(dim(s, "rows")) * dim(s, "n");
  };
  k.inits = {{"eps_buf", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) { rms_norm_reference(s, t, 0, -1, 1, 2, 3); };
  k.tolerance = float_tolerances();
  k.bytes = [](const Shape& s, ScalarType t) {
    return (2 * uint64_t(dim(s, "rows")) * dim(s, "n") + dim(s, "n")) * storage_bytes(t) + 4;
  };
  k.example_shape = {{"rows", 32}, {"n", 8192}};
  k.test_shapes = {{{"rows", 3}, {"n", 1}}, {{"rows", 2}, {"n", 100}}, {{"rows", 4}, {"n", 4096}},
                   {{"rows", 2}, {"n", 8200}}};
  k.bench_shapes = {{{"rows", 4096}, {"n", 8192}}, {{"rows", 2048}, {"n", 16384}}};
  return k;
}

}  // namespace mtile::lib
