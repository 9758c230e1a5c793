#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec softmax_spec();
KernelSpec softmax_masked_spec();
KernelSpec logsumexp_spec();
}  // namespace mtile::lib
