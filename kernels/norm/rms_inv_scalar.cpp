// mt_rms_inv_scalar: 1 / sqrt(sum(partial_ssq[row, :]) / n + eps), one threadgroup per row.
// Callers pass their per-thread partial sum of squares as a value: the inliner turns the load
// below into that value and the store into the call's result.
#include "kernels/norm/norm.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

void mt_rms_inv_scalar(In<f32> partial_ssq, In<f32> eps_buf, Out<f32> out, Constexpr n) {
  Val row = program_id(0);
  Val partial = load(partial_ssq[row * lsize() + tid()]);
  Val total = reduce_sum(partial);
  Val inv = rsqrt(total / n.cast<f32>() + load(eps_buf[0u]));
  store(out[row], inv);  // every thread holds the same value
}

}  // namespace

const KernelDef& mt_rms_inv_scalar_def() {
  static const KernelDef def = define_kernel("mt_rms_inv_scalar", ir::Mode::Reduction,
                                             {"partial_ssq", "eps_buf", "out", "n"}, &mt_rms_inv_scalar);
  return def;
}

KernelSpec mt_rms_inv_scalar_spec() {
  KernelSpec k;
  k.def = mt_rms_inv_scalar_def();
  k.family = "norm";
  k.summary = "inverse RMS of a row from per-thread partial sums of squares (shared callee)";
  k.dims = {"rows", "threads", "n"};
  k.dispatch_rule = "grid = rows, tpg = threads";
  k.dispatch = [](const Shape& s) {
    Geometry g;
    g.grid[0] = dim(s, "rows");
    g.tpg = dim(s, "threads");
    return g;
  };
  k.preconditions = {{"n >= 1", {"n"}, [](const auto& v) { return v.at("n") >= 1; }}};
  k.constexprs = [](const Shape& s) { return std::map<std::string, uint32_t>{{"n", dim(s, "n")}}; };
  k.elements = [](const std::string& p, const Shape& s) -> uint64_t {
    if (p == "partial_ssq") return uint64_t(dim(s, "rows")) * dim(s, "threads");
    if (p == "eps_buf") return 1;
    return dim(s, "rows");
  };
  k.inits = {{"partial_ssq", Init::uniform(0.0, 4.0)}, {"eps_buf", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint32_t rows = dim(s, "rows"), threads = dim(s, "threads"), n = dim(s, "n");
    for (uint32_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (uint32_t i = 0; i < threads; ++i) sum += t[0][r * threads + i];
      t[2][r] = 1.0 / std::sqrt(sum / n + t[1][0]);
    }
  };
  k.tolerance = {{ScalarType::f32, {1e-5, 1e-4}}};
  k.bytes = [](const Shape& s, ScalarType) {
    return (uint64_t(dim(s, "rows")) * dim(s, "threads") + dim(s, "rows") + 1) * 4;
  };
  k.example_shape = {{"rows", 64}, {"threads", 1024}, {"n", 4096}};
  k.test_shapes = {{{"rows", 3}, {"threads", 32}, {"n", 128}},
                   {{"rows", 5}, {"threads", 1024}, {"n", 4096}},
                   {{"rows", 2}, {"threads", 96}, {"n", 384}}};
  k.bench_shapes = {{{"rows", 4096}, {"threads", 1024}, {"n", 4096}}};
  return k;
}

}  // namespace mtile::lib
