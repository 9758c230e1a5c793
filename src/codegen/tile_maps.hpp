// The tensor maps a kernel's copy_tile instructions read (docs/IR.md "Tile copies"): on CUDA each
// distinct view (tensor, dims, strides, box, swizzle) is one CUtensorMap that the driver encodes
// at launch from the tensor's address and passes as a __grid_constant__ parameter after the
// kernel's own. Codegen and the backend list them the same way, from the lowered function.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::codegen {

struct TileMap {
  int tensor = -1;  // parameter index
  ScalarType elem = ScalarType::f32;
  uint32_t rank = 1, swizzle = 0;
  std::array<uint64_t, 3> dims{1, 1, 1}, strides{1, 0, 0}, box{1, 1, 1};  // elements; strides[0] unused
  bool operator==(const TileMap&) const = default;
};

// Every distinct view in order of first use. Throws Error naming the kernel and the tensor where
// a dim, stride or box size is not a constant (constexprs not baked into the code).
std::vector<TileMap> tile_maps(const ir::Function& f);

// The index in `maps` (tile_maps(f)) of a copy_tile's view.
size_t tile_map_index(const std::vector<TileMap>& maps, const ir::Function& f, const ir::Inst& copy);

}  // namespace mtile::codegen
