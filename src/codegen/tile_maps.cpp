#include "codegen/tile_maps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "ir/eval.hpp"
#include "ir/slots.hpp"
#include "mtile/types.hpp"

namespace mtile::codegen {
namespace {

using namespace ir;

using Defs = std::unordered_map<Id, const Inst*>;

Defs definitions(const Function& f) {
  Defs defs;
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.result != kNoId) defs[in.result] = &in;
  });
  return defs;
}

bool launch_fixes(const Inst& in) {
  switch (in.op) {
    case Op::Const:
    case Op::ConstexprRef:
    case Op::ScalarRef:
    case Op::GridSize:
    case Op::ThreadgroupSize: return true;
    default: return op_kind(in.op) == OpKind::Unary || op_kind(in.op) == OpKind::Binary;
  }
}

// The steps that compute `id` from what a launch fixes, appended to v (shared subexpressions
// once); an empty string, or what it depends on that a launch does not fix.
struct Translate {
  const Defs& defs;
  LaunchValue v;
  std::unordered_map<Id, int> done;
  std::string why;
  int operator()(Id id) {
    if (auto it = done.find(id); it != done.end()) return it->second;
    auto def = defs.find(id);
    if (def == defs.end()) {
      why = "a loop's variable";
      return -1;
    }
    const Inst& in = *def->second;
    if (!launch_fixes(in)) {
      why = fmt::format("'{}'", op_name(in.op));
      return -1;
    }
    LaunchValue::Step s{in.op, in.type, in.bits, in.param};
    if (!in.args.empty() && (s.a = (*this)(in.args[0])) < 0) return -1;
    if (in.args.size() > 1 && (s.b = (*this)(in.args[1])) < 0) return -1;
    v.steps.push_back(s);
    return done[id] = static_cast<int>(v.steps.size()) - 1;
  }
};

TileMap view_of(const Function& f, const Defs& defs, const Inst& in) {
  TileMap m;
  m.tensor = copy_source(in);
  m.elem = f.params.at(m.tensor).elem;
  m.rank = copy_tile_rank(in);
  m.swizzle = copy_tile_swizzle(in);
  auto value = [&](size_t arg, const char* what, uint32_t d) {
    Translate t{defs, {}, {}, {}};
    if (t(in.args.at(arg)) < 0)
      throw Error(
          fmt::format("kernel {}: copy_tile from '{}': its {} of dim {} depends on {}, which a launch does "
                      "not fix; a tensor map holds the view for the whole launch (make it a constant, a "
                      "constexpr or the grid's size)",
                      f.name, f.params.at(m.tensor).name, what, d, t.why));
    return t.v;
  };
  for (uint32_t d = 0; d < m.rank; ++d) {
    m.dims[d] = value(copy_tile_dim_arg(in, d), "size", d);
    if (d) m.strides[d] = value(copy_tile_stride_arg(in, d), "stride", d);
    LaunchValue box = value(copy_tile_box_arg(in, d), "box size", d);
    if (!box.constant())
      throw Error(fmt::format("kernel {}: copy_tile from '{}': its box size of dim {} is not a constant", f.name,
                              f.params.at(m.tensor).name, d));
    m.box[d] = box.steps[0].bits;
  }
  return m;
}

}  // namespace

uint64_t LaunchValue::eval(std::span<const uint64_t> values, const std::array<uint32_t, 3>& grid, uint32_t tpg) const {
  std::vector<Scalar> r(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    switch (s.op) {
      case Op::Const: r[i] = scalar_from_bits(s.type, s.bits); break;
      case Op::ConstexprRef:
      case Op::ScalarRef: r[i] = scalar_from_bits(s.type, values[static_cast<size_t>(s.param)]); break;
      case Op::GridSize: r[i].u64 = grid.at(s.bits); break;
      case Op::ThreadgroupSize: r[i].u64 = tpg; break;
      default:
        r[i] = s.b < 0 ? eval_unary(s.op, steps[s.a].type, s.type, r[s.a])
                       : eval_binary(s.op, steps[s.a].type, r[s.a], r[s.b]);
    }
  }
  return scalar_bits(steps.back().type, r.back());  // as the CPU engine reads it
}

std::vector<TileMap> tile_maps(const Function& f) {
  std::vector<TileMap> maps;
  Defs defs = definitions(f);
  for_each_inst(f.body, [&](const Inst& in) {
    if (in.op != Op::CopyTile) return;
    TileMap m = view_of(f, defs, in);
    if (std::find(maps.begin(), maps.end(), m) == maps.end()) maps.push_back(m);
  });
  return maps;
}

size_t tile_map_index(const std::vector<TileMap>& maps, const Function& f, const Inst& copy) {
  TileMap m = view_of(f, definitions(f), copy);
  auto it = std::find(maps.begin(), maps.end(), m);
  if (it == maps.end()) throw InternalError(fmt::format("kernel {}: a copy_tile's view is not among its maps", f.name));
  return static_cast<size_t>(it - maps.begin());
}

}  // namespace mtile::codegen
