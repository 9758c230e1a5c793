// Which instructions name an id of their function in `param` (a local or a threadgroup array)
// rather than a parameter index: what passes that rename ids or count uses must follow.
#pragma once
#include "mtile/ir.hpp"

namespace mtile::ir {

// LocalGet and LocalSet (a local), and loads, stores (scalar, vector and matrix), atomics, async
// copies, mma_async's operand reads and mbarrier ops in threadgroup memory (an array).
inline bool names_slot(const Inst& in) {
  if (in.op == Op::LocalGet || in.op == Op::LocalSet) return true;
  return in.space == MemSpace::Threadgroup &&
         (in.op == Op::Load || in.op == Op::Store || in.op == Op::LoadVector || in.op == Op::StoreVector ||
          in.op == Op::Atomic || in.op == Op::CopyAsync || in.op == Op::CopyTile || in.op == Op::LoadMatrix ||
          in.op == Op::MmaAsync || is_mbarrier(in.op));
}

// Copies from a device tensor into threadgroup memory that complete later: copy_async, copy_tile.
inline bool is_async_copy(Op op) {
  return op == Op::CopyAsync || op == Op::CopyTile;
}

// The tensor parameter an async copy reads (its `param` is the threadgroup array it writes).
inline int copy_source(const Inst& in) {
  return static_cast<int>(static_cast<uint32_t>(in.bits));
}

}  // namespace mtile::ir
