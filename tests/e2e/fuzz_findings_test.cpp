// Regression tests for what `mtile fuzz` found, one kernel each, checked bit for bit on the CPU
// engine (through the Context's full pipeline, constant folding included) and on CUDA where a
// device opens (skipped with the reason otherwise).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "mtile/dsl.hpp"
#include "mtile/runtime.hpp"
#include "passes/pipeline.hpp"

namespace mtile {
namespace {

using namespace dsl;

// Runs `traced` on `b` with one tensor of 32-bit words per parameter (inputs as given, outputs
// zero) and returns every tensor afterwards.
std::vector<std::vector<uint32_t>> run_on(Backend& b, const ir::Function& traced, const Geometry& g,
                                          std::vector<std::vector<uint32_t>> data) {
  auto exe = b.prepare(passes::run_pipeline(traced, b.target()));
  std::vector<Buffer> buffers;
  for (size_t i = 0; i < data.size(); ++i) {
    buffers.push_back(b.alloc(traced.params[i].elem, data[i].size()));
    b.upload(buffers.back(), data[i].data());
  }
  std::vector<Buffer*> args;
  for (Buffer& x : buffers) args.push_back(&x);
  b.run(*exe, g, args, std::vector<uint64_t>(data.size(), 0));
  for (size_t i = 0; i < data.size(); ++i) {
    b.download(buffers[i], data[i].data());
    b.release(buffers[i]);
  }
  return data;
}

std::vector<std::unique_ptr<Backend>> backends() {
  std::vector<std::unique_ptr<Backend>> out;
  out.push_back(make_backend("cpu"));
  try {
    out.push_back(make_backend("cuda"));
  } catch (const Error& e) {
    std::printf("[ skipped  ] cuda: %s\n", e.what());
  }
  return out;
}

uint32_t bits(float f) {
  return float_bits(f);
}

// Found by `mtile fuzz --backend cuda` (seed 2067): max(-0, +0) was -0 on the engine (glibc's
// fmax returns its first operand for equal zeros) and +0 on CUDA. The IR now orders -0 below +0.
void min_max(In<f32> a, In<f32> b, Out<f32> lo, Out<f32> hi) {
  Val i = tid();
  Val x = load(a[i]), y = load(b[i]);
  store(lo[i], min(x, y));
  store(hi[i], max(x, y));
}

void min_max_folded(Out<f32> lo, Out<f32> hi) {
  Val i = tid();
  if_(i == 0u, [&] {
    store(lo[0u], min(lit(0.0f), lit(-0.0f)));
    store(lo[1u], min(lit(-0.0f), lit(0.0f)));
    store(hi[0u], max(lit(0.0f), lit(-0.0f)));
    store(hi[1u], max(lit(-0.0f), lit(0.0f)));
  });
}

void zero_reductions(In<f32> a, Out<f32> mx, Out<f32> mn) {
  Val i = tid();
  Val x = load(a[i]);
  store(mx[i], simd_max(x));
  store(mn[i], simd_min(x));
}

TEST(FuzzFindings, MinAndMaxOrderNegativeZeroBelowPositiveZero) {
  const float nan = std::nanf("");
  const std::vector<std::pair<float, float>> pairs = {{-0.0f, 0.0f}, {0.0f, -0.0f}, {-0.0f, -0.0f}, {0.0f, 0.0f},
                                                      {nan, 1.0f},   {1.0f, nan},   {1.0f, 2.0f},   {-INFINITY, -0.0f}};
  const std::vector<float> lo = {-0.0f, -0.0f, -0.0f, 0.0f, 1.0f, 1.0f, 1.0f, -INFINITY};
  const std::vector<float> hi = {0.0f, 0.0f, -0.0f, 0.0f, 1.0f, 1.0f, 2.0f, -0.0f};
  const uint32_t n = 32;
  std::vector<uint32_t> a(n, bits(1.0f)), b(n, bits(2.0f));
  for (size_t k = 0; k < pairs.size(); ++k) {
    a[k] = bits(pairs[k].first);
    b[k] = bits(pairs[k].second);
  }
  const ir::Function f =
      define_kernel("fuzz_min_max", ir::Mode::Elementwise, {"a", "b", "lo", "hi"}, &min_max).trace(ScalarType::f32);
  const ir::Function folded =
      define_kernel("fuzz_min_max_folded", ir::Mode::Elementwise, {"lo", "hi"}, &min_max_folded).trace(ScalarType::f32);
  for (auto& backend : backends()) {
    SCOPED_TRACE(backend->name());
    auto out = run_on(*backend, f, {{1, 1, 1}, n}, {a, b, std::vector<uint32_t>(n), std::vector<uint32_t>(n)});
    for (size_t k = 0; k < pairs.size(); ++k) {
      EXPECT_EQ(out[2][k], bits(lo[k])) << "min(" << pairs[k].first << ", " << pairs[k].second << ")";
      EXPECT_EQ(out[3][k], bits(hi[k])) << "max(" << pairs[k].first << ", " << pairs[k].second << ")";
    }
    auto c = run_on(*backend, folded, {{1, 1, 1}, 1}, {std::vector<uint32_t>(2), std::vector<uint32_t>(2)});
    EXPECT_EQ(c[0], (std::vector<uint32_t>{bits(-0.0f), bits(-0.0f)})) << "folded min";
    EXPECT_EQ(c[1], (std::vector<uint32_t>{bits(0.0f), bits(0.0f)})) << "folded max";
    // The simdgroup butterfly combines lanes in both orders.
    std::vector<uint32_t> zeros(n);
    for (uint32_t k = 0; k < n; ++k) zeros[k] = bits(k % 3 ? 0.0f : -0.0f);
    const ir::Function r =
        define_kernel("fuzz_zero_reductions", ir::Mode::Reduction, {"a", "mx", "mn"}, &zero_reductions)
            .trace(ScalarType::f32);
    auto red = run_on(*backend, r, {{1, 1, 1}, n}, {zeros, std::vector<uint32_t>(n), std::vector<uint32_t>(n)});
    EXPECT_EQ(red[1], std::vector<uint32_t>(n, bits(0.0f))) << "simd_max of -0 and +0";
    EXPECT_EQ(red[2], std::vector<uint32_t>(n, bits(-0.0f))) << "simd_min of -0 and +0";
  }
}

}  // namespace
}  // namespace mtile
