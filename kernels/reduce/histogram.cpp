// histogram: counts[b] += the number of elements of x that fall in bin b of `bins` equal bins over
// [lo, hi] (torch.histc's binning): bin = floor((x - lo) * (bins / (hi - lo))), in f32, with x == hi
// in the last bin; elements outside [lo, hi] and NaN are not counted. counts is u32, added to.
// Each threadgroup counts one block of consecutive elements of x (its threads striding over it, so
// consecutive threads read consecutive elements) into its own histogram in threadgroup memory with
// threadgroup atomics, then adds its non-zero bins to counts with device atomics, so device
// atomics are bins per threadgroup, not one per element. An element's index is the block's start
// plus an offset within the block, which widen_indices can recompute in 64 bits.
#include <cmath>

#include "kernels/reduce/reduce.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void histogram(In<T> x, InOut<u32> counts, Scalar<f32> lo, Scalar<f32> hi, Constexpr n, Constexpr bins) {
  TgArray local = threadgroup_array<u32>(config("tg_bins"));
  for_(tid(), bins, lsize(), [&](Val b) { store(local[b], lit(0u)); });
  barrier();
  Val per_unit = named("bins_per_unit", bins.cast<f32>() / (hi - lo));
  Val last = bins - 1u;
  // Block g: [g * per_group, min((g + 1) * per_group, n)); ceil(n / groups) without n + groups - 1.
  Val per_group = named("per_group", n / grid_size(0) + select(n % grid_size(0) != 0u, lit(1u), lit(0u)));
  Val start = named("block_start", program_id(0) * per_group);
  Val count = named("block_count", select(start < n, min(per_group, n - start), lit(0u)));
  for_(tid(), count, lsize(), [&](Val j) {
    Val v = load<f32>(x[start + j]);
    if_(v >= lo && v <= hi, [&] {
      Val bin = min(floor((v - lo) * per_unit).cast<u32>(), last);
      atomic_add(local[bin], lit(1u));
    });
  });
  barrier();
  for_(tid(), bins, lsize(), [&](Val b) {
    Val c = load(local[b]);
    if_(c != 0u, [&] { atomic_add(counts[b], c); });
  });
}

}  // namespace

KernelSpec histogram_spec() {
  KernelSpec k;
  k.def = define_generic_kernel("histogram", ir::Mode::Elementwise, {"x", "counts", "lo", "hi", "n", "bins"},
                                MTILE_FLOAT_VARIANTS(histogram));
  k.family = "reduce";
  k.summary = "counts[b] += elements of x in bin b of bins equal bins over [lo, hi] (u32 atomics)";
  using rule::var;
  rule::Expr n = var("n"), bins = var("bins"), threads = var("threads");
  k.dims = {"n", "bins"};
  // tg_bins sizes the threadgroup histogram, so the trace needs it: a Config, equal to the dim.
  // Threadgroups: one per 64 elements a thread, at most what the device holds at once.
  k.config = {{"tg_bins", bins},
              {"threads", 256},
              {"groups", rule::clamp(rule::ceil_div(n, threads * 64), 1,
                                     var("sm_count") * rule::max(var("max_threads_per_sm") / threads, 1))}};
  k.dispatch = {.grid = var("groups"), .tpg = threads};
  // The blocks count every element once for any grid and threadgroup size; the geometry is still
  // pinned to the Config's, as every library kernel's is. A block's start stays below 2^32.
  k.preconditions = {n >= 1,
                     bins >= 1,
                     var("tg_bins") == bins,
                     bins * 4 <= var("shared_memory"),
                     var("grid") == var("groups"),
                     var("grid_y") == 1,
                     var("grid_z") == 1,
                     var("tpg") == threads,
                     n + var("grid") < (uint64_t{1} << 32)};
  k.sizes = {{"x", n}, {"counts", bins}};
  // x reaches past [lo, hi] on both sides, so some elements are not counted; counts start from
  // non-zero values, which the kernel adds to.
  k.inits = {{"x", Init::uniform(-1.2, 1.2)},
             {"counts", Init::uniform(1, 1000)},
             {"lo", Init::constant(-1.0)},
             {"hi", Init::constant(1.0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t n = dim(s, "n"), bins = dim(s, "bins");
    // The kernel's f32 arithmetic, step by step (each operation rounds once, as on every backend),
    // so elements at a bin's edge land in the same bin.
    float lo = static_cast<float>(t["lo"][0]), hi = static_cast<float>(t["hi"][0]);
    float per_unit = static_cast<float>(bins) / (hi - lo);
    for (uint64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(t["x"][i]);
      if (!(v >= lo && v <= hi)) continue;
      float scaled = (v - lo) * per_unit;
      uint64_t bin = std::min<uint64_t>(static_cast<uint64_t>(std::floor(scaled)), bins - 1);
      t["counts"][bin] += 1;
    }
  };
  // Counts are exact.
  k.tolerance = {{ScalarType::f32, {0, 0, 0}}, {ScalarType::f16, {0, 0, 0}}, {ScalarType::bf16, {0, 0, 0}}};
  k.example_shape = {{"n", 1u << 20}, {"bins", 256}};
  k.test_shapes = {{{"n", 1}, {"bins", 1}},
                   {{"n", 1000}, {"bins", 7}},
                   {{"n", 70001}, {"bins", 256}},
                   {{"n", 5000}, {"bins", 3000}}};
  k.bench_shapes = {
      {{"n", 1u << 24}, {"bins", 256}}, {{"n", 1u << 26}, {"bins", 256}}, {{"n", 1u << 24}, {"bins", 4096}}};
  return k;
}

}  // namespace mtile::lib
