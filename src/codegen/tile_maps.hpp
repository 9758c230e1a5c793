// The tensor maps a kernel's copy_tile instructions read (docs/IR.md "Tile copies"): on CUDA each
// distinct view (tensor, dims, strides, box, swizzle) is one CUtensorMap that the driver encodes
// at launch from the tensor's address and passes as a __grid_constant__ parameter after the
// kernel's own. Codegen and the backend list them the same way, from the lowered function.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::codegen {

// A view's size or stride: a constant, or an expression of constants, constexpr and scalar
// parameters and the launch's geometry that the backend evaluates at each launch (a launch
// constexpr, such as attention's seq, is a kernel parameter rather than a constant in the code).
struct LaunchValue {
  struct Step {  // one instruction; a and b index earlier steps
    ir::Op op = ir::Op::Const;
    ScalarType type = ScalarType::u32;
    uint64_t bits = 0;
    int param = -1, a = -1, b = -1;
    bool operator==(const Step&) const = default;
  };
  std::vector<Step> steps;  // the last is the value
  bool operator==(const LaunchValue&) const = default;
  // values: each parameter's launch value (a constexpr's or scalar's bits); grid and tpg: the launch's.
  uint64_t eval(std::span<const uint64_t> values, const std::array<uint32_t, 3>& grid, uint32_t tpg) const;
  bool constant() const { return steps.size() == 1 && steps[0].op == ir::Op::Const; }
};

struct TileMap {
  int tensor = -1;  // parameter index
  ScalarType elem = ScalarType::f32;
  uint32_t rank = 1, swizzle = 0;
  std::array<LaunchValue, 3> dims, strides;  // elements; strides[0] unused
  std::array<uint64_t, 3> box{1, 1, 1};      // constants: the code's byte counts depend on them
  bool operator==(const TileMap&) const = default;
};

// Every distinct view in order of first use. Throws Error naming the kernel and the tensor where
// a box size is not a constant, or a dim or stride depends on anything a launch does not fix
// (a thread's or threadgroup's index, memory, a loop's variable).
std::vector<TileMap> tile_maps(const ir::Function& f);

// The index in `maps` (tile_maps(f)) of a copy_tile's view.
size_t tile_map_index(const std::vector<TileMap>& maps, const ir::Function& f, const ir::Inst& copy);

}  // namespace mtile::codegen
