// Reductions that select or count: argmax and top_k over rows, histogram.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec argmax_spec();
KernelSpec top_k_spec();
KernelSpec histogram_spec();
}  // namespace mtile::lib
