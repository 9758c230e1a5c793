// Structural hash: xxHash of the printed form, which names every op, type, id and callee body.
#include <xxhash.h>

#include "mtile/ir.hpp"

namespace mtile::ir {

uint64_t structural_hash(const Function& f) {
  std::string text = print(f);
  return XXH3_64bits(text.data(), text.size());
}

}  // namespace mtile::ir
