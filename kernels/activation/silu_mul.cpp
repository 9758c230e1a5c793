// silu_mul: SwiGLU's gate, out = silu(gate) * up = gate * sigmoid(gate) * up, in f32 and rounded
// once to T. gate and up are the two halves of each row of x = [rows, 2n] (vLLM's silu_and_mul
// layout: a fused gate_up projection writes them side by side): gate = x[r, :n], up = x[r, n:];
// out = [rows, n].
// Threadgroup (row, block) takes 8 consecutive columns a thread (a 16-byte access of bf16 where n
// is a multiple of 8), blocks of 256 threads along y, so a short batch still fills the device.
#include <cmath>

#include "kernels/activation/activation.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void silu_mul(In<T> x, Out<T> out, Constexpr n) {
  const uint32_t per_thread = config("per_thread");
  Val in_row = named("in_row", program_id(0) * (n * 2u));
  Val out_row = named("out_row", program_id(0) * n);
  Val at = named("at", (program_id(1) * lsize() + tid()) * per_thread);
  visit_chunk(at, n, per_thread, [&](Val c, uint32_t count) {
    std::vector<Val> outs;
    for (uint32_t j = 0; j < count; ++j) {
      Val gate = load<f32>(x[column(in_row + c, j)]), up = load<f32>(x[column(in_row + n + c, j)]);
      outs.push_back(gate * sigmoid(gate) * up);
    }
    for (uint32_t j = 0; j < count; ++j) store(out[column(out_row + c, j)], outs[j].cast<T>());
  });
}

}  // namespace

KernelSpec silu_mul_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("silu_mul", ir::Mode::Elementwise, {"x", "out", "n"}, MTILE_FLOAT_VARIANTS(silu_mul));
  k.family = "activation";
  k.summary = "SwiGLU: out[r, :] = silu(x[r, :n]) * x[r, n:], x = [rows, 2n]";
  using rule::var;
  rule::Expr n = var("n"), rows = var("rows"), per_thread = var("per_thread");
  k.dims = {"rows", "n"};
  k.config = {{"threads", rule::clamp(rule::round_up(rule::ceil_div(n, 8), var("simd_width")), var("simd_width"), 256)},
              {"per_thread", 8}};
  k.dispatch = {.grid = rows, .grid_y = rule::ceil_div(n, var("threads") * per_thread), .tpg = var("threads")};
  k.preconditions = {n >= 1, per_thread >= 1, var("grid") == rows,
                     var("grid_y") == rule::ceil_div(n, var("tpg") * per_thread), var("grid_z") == 1};
  k.sizes = {{"x", rows * n * 2}, {"out", rows * n}};
  k.inits = {{"x", Init::uniform(-2.0, 2.0)}};  // outputs within 4: float_tolerances hold for O(1) values
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t rows = dim(s, "rows"), n = dim(s, "n");
    const auto& x = t["x"];
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t i = 0; i < n; ++i) {
        double gate = x[r * 2 * n + i], up = x[r * 2 * n + n + i];
        t["out"][r * n + i] = gate / (1.0 + std::exp(-gate)) * up;
      }
  };
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 32}, {"n", 14336}};
  k.test_shapes = {
      {{"rows", 3}, {"n", 1}}, {{"rows", 1}, {"n", 100}}, {{"rows", 3}, {"n", 1000}}, {{"rows", 5}, {"n", 2900}}};
  // Llama 3 8B (14336) and 70B (28672) intermediate sizes.
  k.bench_shapes = {{{"rows", 1}, {"n", 14336}},
                    {{"rows", 32}, {"n", 14336}},
                    {{"rows", 256}, {"n", 14336}},
                    {{"rows", 4096}, {"n", 14336}},
                    {{"rows", 2048}, {"n", 28672}}};
  return k;
}

}  // namespace mtile::lib
