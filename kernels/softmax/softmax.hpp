#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec softmax_spec();
}
