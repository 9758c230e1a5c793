// Attention for decoding: one query token per sequence against its KV cache.
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec attention_decode_spec();
}  // namespace mtile::lib
