// Matrix-vector products for decoding: a few rows of activations times a weight matrix.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec gemv_spec();
}  // namespace mtile::lib
