// The standard kernel library (kernels/), which the registry loads first.
#pragma once
#include <vector>

#include "mtile/registry.hpp"

namespace mtile::lib {

// The library's specs, in the order `mtile list` shows them.
std::vector<KernelSpec> standard_library();

}  // namespace mtile::lib
