// Activation functions.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec silu_mul_spec();
KernelSpec gelu_spec();
KernelSpec gelu_tanh_spec();
}  // namespace mtile::lib
