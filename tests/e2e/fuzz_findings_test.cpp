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
// zero; a 64-bit element is two words) and returns every tensor afterwards.
std::vector<std::vector<uint32_t>> run_on(Backend& b, const ir::Function& traced, const Geometry& g,
                                          std::vector<std::vector<uint32_t>> data) {
  auto exe = b.prepare(passes::run_pipeline(traced, b.target()));
  std::vector<Buffer> buffers;
  for (size_t i = 0; i < data.size(); ++i) {
    buffers.push_back(b.alloc(traced.params[i].elem, data[i].size() * 4 / storage_bytes(traced.params[i].elem)));
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

// Found while extending the fuzzer to 64-bit values: a threadgroup reduction's identity for the
// simdgroups a threadgroup of fewer than 32 * 32 threads lacks was cut to 32 bits, so reduce_max
// of negative i64 values gave 0 and reduce_min of u64 values past 2^32 gave 2^32 - 1.
void reduce_64(In<i64> a, In<u64> b, Out<i64> mx, Out<u64> mn) {
  Val i = tid();
  store(mx[i], reduce_max(load(a[i])));
  store(mn[i], reduce_min(load(b[i])));
}

TEST(FuzzFindings, ReductionsOf64BitValuesUseA64BitIdentity) {
  const uint32_t n = 64;  // 2 of 32 simdgroups
  std::vector<uint32_t> a(2 * n), b(2 * n);
  for (uint32_t k = 0; k < n; ++k) {
    int64_t v = -1000 - static_cast<int64_t>(k);
    uint64_t w = (uint64_t{5} << 32) + k;
    std::memcpy(&a[2 * k], &v, 8);
    std::memcpy(&b[2 * k], &w, 8);
  }
  const ir::Function f =
      define_kernel("fuzz_reduce_64", ir::Mode::Reduction, {"a", "b", "mx", "mn"}, &reduce_64).trace(ScalarType::f32);
  for (auto& backend : backends()) {
    SCOPED_TRACE(backend->name());
    auto out = run_on(*backend, f, {{1, 1, 1}, n}, {a, b, std::vector<uint32_t>(2 * n), std::vector<uint32_t>(2 * n)});
    int64_t mx;
    uint64_t mn;
    std::memcpy(&mx, &out[2][2 * 7], 8);
    std::memcpy(&mn, &out[3][2 * 7], 8);
    EXPECT_EQ(mx, -1000);
    EXPECT_EQ(mn, uint64_t{5} << 32);
  }
}

// Found while extending the fuzzer to atomics: passes that rename ids (canonical order after each
// pass, inlining) or count uses (dead code) followed loads and stores of threadgroup memory but
// not atomics, so an array only atomics touch was removed, or an atomic kept the id its array had
// before a reduction's scratch array was hoisted above it.
void tg_atomics(In<u32> x, Out<u32> y) {
  Val i = tid();
  Val total = reduce_sum(load(x[i]));
  TgArray slots = threadgroup_array<u32>(32);
  atomic_exchange(slots[i], load(x[i]) * 3u);
  Val back = atomic_exchange(slots[i], lit(0u));
  store(y[i], back + total);
}

TEST(FuzzFindings, ThreadgroupAtomicsKeepTheirArrayThroughThePipeline) {
  const uint32_t n = 32;
  std::vector<uint32_t> x(n);
  uint32_t total = 0;
  for (uint32_t k = 0; k < n; ++k) total += x[k] = k + 1;
  const ir::Function f =
      define_kernel("fuzz_tg_atomics", ir::Mode::Reduction, {"x", "y"}, &tg_atomics).trace(ScalarType::f32);
  for (auto& backend : backends()) {
    SCOPED_TRACE(backend->name());
    auto out = run_on(*backend, f, {{1, 1, 1}, n}, {x, std::vector<uint32_t>(n)});
    for (uint32_t k = 0; k < n; ++k) EXPECT_EQ(out[1][k], 3 * (k + 1) + total) << "thread " << k;
  }
}

}  // namespace
}  // namespace mtile
