// Attention: decoding (one query token per sequence against its KV cache) and prefill (causal,
// over a whole prompt).
#pragma once
#include "mtile/registry.hpp"

namespace mtile::lib {
KernelSpec attention_decode_spec();
KernelSpec attention_prefill_spec();
}  // namespace mtile::lib
