// lower_threadgroup_reductions: rewrites threadgroup_reduce_{sum,max,min} into a simd reduction,
// one partial per simdgroup in threadgroup memory, a barrier, and a second simd reduction that
// every simdgroup performs, so every thread gets the same result:
//
//   s = simd_op(v);  if (lane == 0) scratch[simd_group] = s;  barrier;
//   r = simd_op(lane < ceil(tpg / W) ? scratch[lane] : identity);  barrier;
//
// with W the target's simd width. Each reduction has its own scratch array, so the trailing
// barrier is needed only where the reduction runs again, inside a loop: there it keeps the next
// iteration's partials from overwriting ones not yet read. Where the function's threadgroup size
// is known (specialize_threadgroup_size), the second stage reads exactly tpg / W partials, and
// a threadgroup of one simdgroup needs neither: the simd reduction is the whole reduction.
// Requires tpg % W == 0 and tpg <= W * W (checked at launch for every kernel that uses simd
// operations: the target's max threadgroup size is at most W * W).
#include <fmt/format.h>

#include <bit>

#include "ir/eval.hpp"
#include "passes/pipeline.hpp"

namespace mtile::passes {
namespace {

using namespace ir;

class Lowerer {
 public:
  Lowerer(Function& f, uint32_t simd_width) : f_(f), width_(simd_width) {}

  void block(Block& b) {
    std::vector<Inst> out;
    for (Inst& in : b.insts) {
      bool loop = in.op == Op::For || in.op == Op::Loop;
      loops_ += loop;
      for (Block& sub : in.blocks) block(sub);
      loops_ -= loop;
      if (in.op == Op::TgReduceSum || in.op == Op::TgReduceMax || in.op == Op::TgReduceMin) {
        lower(in, out);
      } else {
        out.push_back(std::move(in));
      }
    }
    b.insts = std::move(out);
  }

  std::vector<Inst> arrays;  // hoisted to the top of the function

 private:
  Id emit(std::vector<Inst>& out, Op op, ScalarType t, std::vector<Id> args, uint64_t bits, const SourceLoc& loc) {
    Inst in;
    in.op = op;
    in.type = t;
    in.args = std::move(args);
    in.bits = bits;
    in.result = f_.fresh_id();
    in.loc = loc;
    out.push_back(std::move(in));
    return out.back().result;
  }

  void lower(const Inst& red, std::vector<Inst>& out) {
    const ScalarType t = red.type, u = ScalarType::u32;
    const SourceLoc& loc = red.loc;
    Op simd = red.op == Op::TgReduceSum ? Op::SimdSum : red.op == Op::TgReduceMax ? Op::SimdMax : Op::SimdMin;
    if (f_.tpg != 0 && f_.tpg <= width_) {  // one simdgroup
      Inst total;
      total.op = simd;
      total.type = t;
      total.args = {red.args[0]};
      total.result = red.result;
      total.name = red.name;
      total.loc = loc;
      out.push_back(std::move(total));
      return;
    }

    Inst arr;
    arr.op = Op::TgArrayDecl;
    arr.type = t;
    arr.bits = width_;
    arr.result = f_.fresh_id();
    arr.loc = loc;
    Id scratch = arr.result;
    arrays.push_back(std::move(arr));

    Id partial = emit(out, simd, t, {red.args[0]}, 0, loc);
    Id lane = emit(out, Op::SimdLane, u, {}, 0, loc);
    Id group = emit(out, Op::SimdGroup, u, {}, 0, loc);
    Id zero = emit(out, Op::Const, u, {}, 0, loc);
    Id first = emit(out, Op::Eq, ScalarType::boolean, {lane, zero}, 0, loc);
    Inst guard;
    guard.op = Op::If;
    guard.args = {first};
    guard.blocks.resize(2);
    guard.loc = loc;
    Inst st;
    st.op = Op::Store;
    st.type = t;
    st.space = MemSpace::Threadgroup;
    st.param = scratch;
    st.args = {group, partial};
    st.loc = loc;
    guard.blocks[0].insts.push_back(std::move(st));
    out.push_back(std::move(guard));
    Inst bar;
    bar.op = Op::Barrier;
    bar.loc = loc;
    out.push_back(bar);

    Id size = f_.tpg ? emit(out, Op::Const, u, {}, f_.tpg, loc) : emit(out, Op::ThreadgroupSize, u, {}, 0, loc);
    Id below = emit(out, Op::Const, u, {}, width_ - 1, loc);
    Id shift = emit(out, Op::Const, u, {}, std::countr_zero(width_), loc);
    Id padded = emit(out, Op::Add, u, {size, below}, 0, loc);
    Id groups = emit(out, Op::Shr, u, {padded, shift}, 0, loc);
    Id live = emit(out, Op::Lt, ScalarType::boolean, {lane, groups}, 0, loc);
    Id index = emit(out, Op::Select, u, {live, lane, zero}, 0, loc);
    Inst ld;
    ld.op = Op::Load;
    ld.type = t;
    ld.space = MemSpace::Threadgroup;
    ld.param = scratch;
    ld.args = {index};
    ld.result = f_.fresh_id();
    ld.loc = loc;
    Id loaded = ld.result;
    out.push_back(std::move(ld));
    Id ident = emit(out, Op::Const, t, {}, reduce_identity(simd, t).u, loc);
    Id chosen = emit(out, Op::Select, t, {live, loaded, ident}, 0, loc);
    Inst total;
    total.op = simd;
    total.type = t;
    total.args = {chosen};
    total.result = red.result;  // uses of the reduction see the total
    total.name = red.name;
    total.loc = loc;
    out.push_back(std::move(total));
    if (loops_ > 0) out.push_back(bar);
  }

  Function& f_;
  uint32_t width_;
  int loops_ = 0;  // loops around the instruction being lowered
};

}  // namespace

ir::Function lower_threadgroup_reductions(const ir::Function& f, uint32_t simd_width) {
  if (simd_width < 2 || !std::has_single_bit(simd_width))
    throw Error(fmt::format("lower_threadgroup_reductions: simd width {} is not a power of two", simd_width));
  Function g = f;
  Lowerer low(g, simd_width);
  low.block(g.body);
  g.body.insts.insert(g.body.insts.begin(), low.arrays.begin(), low.arrays.end());
  return g;
}

}  // namespace mtile::passes
