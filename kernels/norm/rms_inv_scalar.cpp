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
  Val total = named("ssq_total", reduce_sum(partial));
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
  using rule::var;
  k.dims = {"rows", "threads", "n"};
  k.dispatch = {.grid = var("rows"), .tpg = var("threads")};
  k.preconditions = spec::one_threadgroup_per_row();
  k.preconditions.push_back(var("tpg") == var("threads"));
  k.preconditions.push_back(var("n") >= 1);
  k.sizes = {{"partial_ssq", var("rows") * var("threads")}, {"eps_buf", 1}, {"out", var("rows")}};
  k.inits = {{"partial_ssq", Init::uniform(0.0, 4.0)}, {"eps_buf", Init::constant(1e-6)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), threads = dim(s, "threads"), n = dim(s, "n");
    const auto& partial = t["partial_ssq"];
    for (uint64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (uint64_t i = 0; i < threads; ++i) sum += partial[r * threads + i];
      t["out"][r] = 1.0 / std::sqrt(sum / static_cast<double>(n) + t["eps_buf"][0]);
    }
  };
  k.tolerance = {{ScalarType::f32, {1e-5, 1e-4}}};
  k.example_shape = {{"rows", 64}, {"threads", 1024}, {"n", 4096}};
  k.test_shapes = {{{"rows", 3}, {"threads", 32}, {"n", 128}},
                   {{"rows", 5}, {"threads", 1024}, {"n", 4096}},
                   {{"rows", 2}, {"threads", 96}, {"n", 384}}};
  k.bench_shapes = {{{"rows", 4096}, {"threads", 1024}, {"n", 4096}}};
  return k;
}

}  // namespace mtile::lib
