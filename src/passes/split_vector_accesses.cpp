// split_vector_accesses: makes every vector access one the target takes. A load_n/store_n of N
// elements wider than the target's widest access (Target::max_vector_bytes: 16 bytes on CUDA
// and the CPU engine, none on Metal) becomes several narrower vector accesses, or N scalar
// accesses where the target takes no vector of two elements. The elements read and written are
// the same, so the result is the same on every backend; the pieces are aligned because the whole
// access is (its first index is a multiple of N, which a launch checks) and each piece starts at
// a multiple of its own width.
//
// Loads: the pieces go where the load was. An extract of lane k reads lane k % w of piece k / w;
// with scalar pieces, its uses read the scalar load of element k instead, and it goes.
#include <unordered_map>

#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

class Splitter {
 public:
  Splitter(Function& f, uint32_t max_bytes) : f_(f), max_bytes_(max_bytes) {}

  void run() {
    block(f_.body);
    if (!replaced_.empty()) rewrite_uses(f_.body);
  }

 private:
  // Lanes of each piece of an access of `lanes` elements of `t`: `lanes` when it fits, 1 for scalars.
  uint32_t piece_lanes(ScalarType t, uint32_t lanes) const {
    uint32_t w = lanes;
    while (w > 1 && w * storage_bytes(t) > max_bytes_) w /= 2;
    return w;
  }

  // base + k, emitted into `out` (base itself for k = 0).
  Id offset(Id base, uint32_t k, ScalarType index_type, std::vector<Inst>& out, const Inst& at) {
    if (k == 0) return base;
    Inst c;
    c.op = Op::Const;
    c.type = index_type;
    c.bits = k;
    c.result = f_.fresh_id();
    c.loc = at.loc;
    Inst add;
    add.op = Op::Add;
    add.type = index_type;
    add.args = {base, c.result};
    add.result = f_.fresh_id();
    add.loc = at.loc;
    out.push_back(std::move(c));
    out.push_back(std::move(add));
    return out.back().result;
  }

  void block(Block& b) {
    std::vector<Inst> out;
    out.reserve(b.insts.size());
    for (Inst& in : b.insts) {
      for (Block& sub : in.blocks) block(sub);
      if (in.op == Op::Extract) {
        if (auto it = pieces_.find(in.args[0]); it != pieces_.end()) {
          const Pieces& p = it->second;
          auto lane = static_cast<uint32_t>(in.bits);
          if (p.lanes == 1) {
            replaced_[in.result] = p.ids[lane];
            continue;
          }
          in.args[0] = p.ids[lane / p.lanes];
          in.bits = lane % p.lanes;
        }
      }
      bool vector = in.op == Op::LoadVector || in.op == Op::StoreVector;
      uint32_t w = vector ? piece_lanes(in.type, in.lanes) : 0;
      if (!vector || w == in.lanes) {
        out.push_back(std::move(in));
        continue;
      }
      ScalarType index_type = types_.at(in.args[0]);
      Pieces p{w, {}};
      for (uint32_t first = 0; first < in.lanes; first += w) {
        Inst piece;
        piece.type = in.type;
        piece.space = in.space;
        piece.param = in.param;
        piece.loc = in.loc;
        piece.bits = in.bits;  // the cache hint
        piece.args = {offset(in.args[0], first, index_type, out, in)};
        if (w > 1) piece.lanes = static_cast<uint8_t>(w);
        if (in.op == Op::LoadVector) {
          piece.op = w > 1 ? Op::LoadVector : Op::Load;
          piece.result = f_.fresh_id();
          p.ids.push_back(piece.result);
        } else {
          piece.op = w > 1 ? Op::StoreVector : Op::Store;
          piece.args.insert(piece.args.end(), in.args.begin() + 1 + first, in.args.begin() + 1 + first + w);
        }
        out.push_back(std::move(piece));
      }
      if (in.op == Op::LoadVector) pieces_[in.result] = std::move(p);
    }
    b.insts = std::move(out);
  }

  void rewrite_uses(Block& b) {
    for_each_inst(b, [&](Inst& in) {
      for (Id& a : in.args)
        if (auto it = replaced_.find(a); it != replaced_.end()) a = it->second;
    });
  }

 public:
  std::unordered_map<Id, ScalarType> types_;

 private:
  struct Pieces {
    uint32_t lanes;       // of each piece
    std::vector<Id> ids;  // the pieces' loads, in order
  };
  Function& f_;
  uint32_t max_bytes_;
  std::unordered_map<Id, Pieces> pieces_;  // split LoadVector -> its pieces
  std::unordered_map<Id, Id> replaced_;    // extract -> the scalar load that replaces it
};

}  // namespace

ir::Function split_vector_accesses(const ir::Function& f, uint32_t max_bytes) {
  Function g = f;
  Splitter s(g, max_bytes);
  for_each_inst(g.body, [&](const Inst& in) {
    if (in.result != kNoId) s.types_[in.result] = in.type;
  });
  s.run();
  return g;
}

}  // namespace mtile::passes
