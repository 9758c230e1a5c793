#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec vector_add_spec();
}
