#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec vector_add_spec();
KernelSpec add_spec();
KernelSpec mul_spec();
}  // namespace mtile::lib
