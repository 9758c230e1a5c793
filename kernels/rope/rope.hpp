// Rotary position embeddings.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec rope_spec();
KernelSpec rope_interleaved_spec();
KernelSpec rms_norm_rope_spec();
}  // namespace mtile::lib
