#include "codegen/tile_maps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "ir/slots.hpp"
#include "mtile/types.hpp"

namespace mtile::codegen {
namespace {

using namespace ir;

std::unordered_map<Id, const Inst*> constants(const Function& f) {
  std::unordered_map<Id, const Inst*> c;
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.op == Op::Const) c[in.result] = &in;
  });
  return c;
}

TileMap view_of(const Function& f, const std::unordered_map<Id, const Inst*>& consts, const Inst& in) {
  TileMap m;
  m.tensor = copy_source(in);
  m.elem = f.params.at(m.tensor).elem;
  m.rank = copy_tile_rank(in);
  m.swizzle = copy_tile_swizzle(in);
  auto value = [&](size_t arg, const char* what, uint32_t d) {
    auto it = consts.find(in.args.at(arg));
    if (it == consts.end())
      throw Error(
          fmt::format("kernel {}: copy_tile from '{}': its {} of dim {} is not known when the kernel is "
                      "built; a tensor map fixes the view then (bake the constexprs it depends on)",
                      f.name, f.params.at(m.tensor).name, what, d));
    return const_value(ScalarType::u32, it->second->bits);
  };
  for (uint32_t d = 0; d < m.rank; ++d) {
    m.dims[d] = static_cast<uint64_t>(value(copy_tile_dim_arg(in, d), "size", d));
    m.box[d] = static_cast<uint64_t>(value(copy_tile_box_arg(in, d), "box size", d));
    if (d) m.strides[d] = static_cast<uint64_t>(value(copy_tile_stride_arg(in, d), "stride", d));
  }
  return m;
}

}  // namespace

std::vector<TileMap> tile_maps(const Function& f) {
  std::vector<TileMap> maps;
  auto consts = constants(f);
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.op != Op::CopyTile) return;
    TileMap m = view_of(f, consts, in);
    if (std::find(maps.begin(), maps.end(), m) == maps.end()) maps.push_back(m);
  });
  return maps;
}

size_t tile_map_index(const std::vector<TileMap>& maps, const Function& f, const Inst& copy) {
  TileMap m = view_of(f, constants(f), copy);
  auto it = std::find(maps.begin(), maps.end(), m);
  if (it == maps.end()) throw InternalError(fmt::format("kernel {}: a copy_tile's view is not among its maps", f.name));
  return static_cast<size_t>(it - maps.begin());
}

}  // namespace mtile::codegen
