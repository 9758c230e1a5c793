// example_histogram: bins[b] += how many of the n values fall in bin b. Each threadgroup counts
// its values with threadgroup atomics, then adds its counts to `bins` with device atomics.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

// doc-snippet: histogram
constexpr uint32_t kBins = 64;

// Bin of value v: v / width, the last bin taking everything above.
void example_histogram(In<u32> values, InOut<u32> bins, Constexpr n, Constexpr width) {
  TgArray counts = threadgroup_array<u32>(kBins);  // sized by a C++ constant
  for_(tid(), kBins, lsize(), [&](Val b) { store(counts[b], lit(0u)); });
  barrier();
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { atomic_add(counts[min(load(values[i]) / width, lit(kBins - 1))], lit(1u)); });
  barrier();
  for_(tid(), kBins, lsize(), [&](Val b) { atomic_add(bins[b], load(counts[b])); });
}
// doc-snippet-end

constexpr uint32_t kWidth = 16;  // the spec's value of `width`

}  // namespace

KernelSpec example_histogram_spec() {
  KernelSpec k;
  k.def = define_kernel("example_histogram", ir::Mode::Reduction, {"values", "bins", "n", "width"}, &example_histogram,
                        ScalarType::u32);
  k.family = "examples";
  k.summary = "a 64-bin histogram of u32 values (threadgroup and device atomics)";
  elementwise_contract(k);
  using rule::var;
  k.constexprs = {{"width", kWidth}};
  k.sizes = {{"values", var("n")}, {"bins", kBins}};
  // Values past the last bin's start (64 * 16) land in it, and bins start from counts of earlier runs.
  k.inits = {{"values", Init::uniform(0, 1100)}, {"bins", Init::uniform(0, 100)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    const auto& values = t["values"];
    auto& bins = t["bins"];
    for (uint64_t i = 0; i < dim(s, "n"); ++i)
      bins[std::min<uint64_t>(static_cast<uint64_t>(values[i]) / kWidth, kBins - 1)] += 1;
  };
  k.tolerance = {{ScalarType::u32, {0, 0}}};  // counts are exact
  k.test_shapes = {{{"n", 1}}, {{"n", 300}}, {{"n", 5000}}};
  return k;
}

}  // namespace mtile::lib
