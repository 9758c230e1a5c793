// Verifier: ids defined once and used only where visible, operand types as docs/IR.md states,
// memory operations on parameters and arrays that exist with the right roles.
#include <fmt/format.h>

#include <unordered_map>

#include "mtile/ir.hpp"
#include "slots.hpp"

namespace mtile::ir {
namespace {

// A Vector is what LoadVector, LoadMatrix and Mma define: `lanes` elements that only Extract may read.
enum class IdKind { Value, Local, Array, Vector };
struct IdInfo {
  IdKind kind;
  ScalarType type;
  bool visible;
  int lanes = 1;
};

const char* kind_name(IdKind k) {
  switch (k) {
    case IdKind::Value: return "value";
    case IdKind::Local: return "local";
    case IdKind::Array: return "threadgroup array";
    case IdKind::Vector: return "vector (only extract reads it)";
  }
  return "?";
}

class Verifier {
 public:
  explicit Verifier(const Function& f) : f_(f) {}

  void run() {
    for (const Param& p : f_.params) {
      if (p.kind == ParamKind::Constexpr && p.elem != ScalarType::u32)
        fail(nullptr, "constexpr '{}' must be u32", p.name);
      if (p.kind == ParamKind::Scalar && (p.elem == ScalarType::boolean || !is_value_type(p.elem)))
        fail(nullptr, "scalar '{}' of {}: scalars are value types (not bool, not memory-only types)", p.name,
             type_name(p.elem));
    }
    block(f_.body);
    barrier_arrays_only();
  }

 private:
  template <class... A>
  [[noreturn]] void fail(const Inst* in, fmt::format_string<A...> fs, A&&... a) {
    std::string where;
    if (in) {
      where = fmt::format(" at '{}'", op_name(in->op));
      if (in->result != kNoId) where += fmt::format(" %{}", in->result);
      if (auto loc = in->loc.str(); !loc.empty()) where += " (" + loc + ")";
    }
    throw Error(fmt::format("IR verifier: kernel {}{}: {}", f_.name, where, fmt::format(fs, std::forward<A>(a)...)));
  }

  const IdInfo& use(const Inst& in, Id id, IdKind kind) {
    auto it = ids_.find(id);
    if (it == ids_.end()) fail(&in, "uses %{} which is never defined before it", id);
    if (!it->second.visible) fail(&in, "uses %{} outside the block that defines it", id);
    if (it->second.kind != kind) fail(&in, "%{} is a {}, not a {}", id, kind_name(it->second.kind), kind_name(kind));
    return it->second;
  }
  ScalarType value(const Inst& in, size_t arg) {
    if (arg >= in.args.size()) fail(&in, "expects at least {} operands, has {}", arg + 1, in.args.size());
    return use(in, in.args[arg], IdKind::Value).type;
  }
  void expect(const Inst& in, size_t arg, ScalarType want, const char* what) {
    ScalarType got = value(in, arg);
    if (got != want) fail(&in, "{} must be {}, got {}", what, type_name(want), type_name(got));
  }
  // A memory access's `bits`: a CacheHint, only on device memory.
  void check_hint(const Inst& in) {
    if (in.bits > static_cast<uint64_t>(CacheHint::Stream))
      fail(&in, "cache hint {} (0 none, 1 keep, 2 stream)", in.bits);
    if (in.bits && in.space == MemSpace::Threadgroup)
      fail(&in, "cache hint {} on threadgroup memory (hints are for device memory)", cache_hint_name(cache_hint(in)));
  }
  void arity(const Inst& in, size_t n) {
    if (in.args.size() != n) fail(&in, "expects {} operands, has {}", n, in.args.size());
  }
  void define(const Inst& in, IdKind kind, std::vector<Id>& scope) {
    if (in.result == kNoId) fail(&in, "defines no id");
    if (in.result >= f_.next_id) fail(&in, "id %{} is not below the function's next_id {}", in.result, f_.next_id);
    if (!ids_.emplace(in.result, IdInfo{kind, in.type, true, in.lanes}).second)
      fail(&in, "defines %{} twice", in.result);
    scope.push_back(in.result);
  }
  const Param& tensor(const Inst& in) {
    if (in.param < 0 || in.param >= static_cast<int>(f_.params.size()))
      fail(&in, "refers to parameter #{} which does not exist", in.param);
    const Param& p = f_.params[in.param];
    if (p.kind != ParamKind::Tensor) fail(&in, "parameter '{}' is not a tensor", p.name);
    return p;
  }

  // The element type of the memory an access names: its threadgroup array's, or its tensor's
  // (which it may not write, `verb`, where that is an input).
  ScalarType memory_elem(const Inst& in, bool writes, const char* verb) {
    if (in.space == MemSpace::Threadgroup) return use(in, in.param, IdKind::Array).type;
    const Param& p = tensor(in);
    if (writes && p.role == Role::In) fail(&in, "{} '{}', an input", verb, p.name);
    return p.elem;
  }

  void block(const Block& b) {
    std::vector<Id> scope;
    ++depth_;
    for (const Inst& in : b.insts) inst(in, scope);
    for (Id id : scope) ids_[id].visible = false;
    --depth_;
  }

  void inst(const Inst& in, std::vector<Id>& scope) {
    Op op = in.op;
    ScalarType t = in.type;
    if (is_unary(op)) {
      arity(in, 1);
      ScalarType a = value(in, 0);
      if (op == Op::Cast) {
        if (a == ScalarType::boolean && is_float(t)) fail(&in, "cast from bool to {} is not defined", type_name(t));
      } else if (op == Op::Bitcast) {
        if (storage_bytes(a) != storage_bytes(t) || a == ScalarType::boolean || t == ScalarType::boolean ||
            storage_bytes(a) < 4)
          fail(&in, "bitcast from {} to {}: both must be 32- or 64-bit value types of one width", type_name(a),
               type_name(t));
      } else if (op_kind(op) == OpKind::Test) {
        if (!is_float(a) || t != ScalarType::boolean) fail(&in, "{} takes a float and gives bool", op_name(op));
      } else if (a != t) {
        fail(&in, "operand is {}, result {}", type_name(a), type_name(t));
      } else if (op == Op::Not && is_float(t)) {
        fail(&in, "not on {} (needs bool or integer)", type_name(t));
      } else if ((op == Op::Neg || op == Op::Abs) && (is_unsigned(t) || t == ScalarType::boolean)) {
        fail(&in, "{} on {}", op_name(op), type_name(t));
      } else if (is_float_math(op) && !is_float(t)) {
        fail(&in, "math function on {} (needs a float type)", type_name(t));
      }
    } else if (is_binary(op)) {
      arity(in, 2);
      ScalarType a = value(in, 0), c = value(in, 1);
      if (a != c) fail(&in, "operands differ in type: {} and {}", type_name(a), type_name(c));
      if (is_comparison(op) ? t != ScalarType::boolean : t != a)
        fail(&in, "result type {} does not fit operands of {}", type_name(t), type_name(a));
      bool bitwise = op == Op::BitAnd || op == Op::BitOr || op == Op::BitXor;
      if (bitwise && is_float(a)) fail(&in, "bitwise op on {}", type_name(a));
      if ((op == Op::Shl || op == Op::Shr) && !is_integer(a)) fail(&in, "shift on {}", type_name(a));
      if (!bitwise && !is_comparison(op) && op != Op::Min && op != Op::Max && a == ScalarType::boolean)
        fail(&in, "arithmetic on bool");
      if (op == Op::Pow && !is_float(a)) fail(&in, "pow on {} (needs a float type)", type_name(a));
    } else {
      switch (op) {
        case Op::Const: arity(in, 0); break;
        case Op::ScalarRef:
          arity(in, 0);
          if (in.param < 0 || in.param >= static_cast<int>(f_.params.size()) ||
              f_.params[in.param].kind != ParamKind::Scalar)
            fail(&in, "refers to parameter #{} which is not a scalar", in.param);
          if (t != f_.params[in.param].elem) fail(&in, "type differs from the scalar parameter's");
          break;
        case Op::ConstexprRef:
          if (in.param < 0 || in.param >= static_cast<int>(f_.params.size()) ||
              f_.params[in.param].kind != ParamKind::Constexpr)
            fail(&in, "refers to parameter #{} which is not a constexpr", in.param);
          if (t != ScalarType::u32) fail(&in, "constexpr values are u32");
          break;
        case Op::ProgramId:
        case Op::GridSize:
          if (in.bits > 2) fail(&in, "axis {} (0..2)", in.bits);
          [[fallthrough]];
        case Op::ThreadId:
        case Op::ThreadgroupSize:
        case Op::SimdLane:
        case Op::SimdGroup:
          if (t != ScalarType::u32) fail(&in, "builtins are u32");
          break;
        case Op::Select:
          arity(in, 3);
          expect(in, 0, ScalarType::boolean, "condition");
          expect(in, 1, t, "first choice");
          expect(in, 2, t, "second choice");
          break;
        case Op::Fma:
          arity(in, 3);
          if (!is_float(t)) fail(&in, "fma on {}", type_name(t));
          for (size_t i = 0; i < 3; ++i) expect(in, i, t, "operand");
          break;
        case Op::Load:
        case Op::Store:
        case Op::Atomic: {
          // Load: index[, mask, other]; Store: index, value[, mask]; Atomic: index, value[, compare].
          size_t n = in.args.size();
          bool masked = (op == Op::Load && n == 3) || (op == Op::Store && n == 3);
          if (op == Op::Load && n != 1 && n != 3)
            fail(&in, "expects 1 or 3 operands (index[, mask, other]), has {}", n);
          if (op == Op::Store && n != 2 && n != 3)
            fail(&in, "expects 2 or 3 operands (index, value[, mask]), has {}", n);
          ScalarType index = value(in, 0);
          if (index != ScalarType::u32 && index != ScalarType::u64) fail(&in, "index must be u32 or u64");
          ScalarType elem = memory_elem(in, op != Op::Load, "writes");
          if (t != value_type(elem))
            fail(&in, "type {} but the memory holds {} (read as {})", type_name(t), type_name(elem),
                 type_name(value_type(elem)));
          if (op == Op::Store) expect(in, 1, t, "stored value");
          if (masked) expect(in, op == Op::Load ? 1 : 2, ScalarType::boolean, "mask");
          if (op != Op::Atomic) check_hint(in);
          if (op == Op::Load && masked) expect(in, 2, t, "value of masked-off lanes");
          if (op == Op::Atomic) {
            auto a = static_cast<AtomicOp>(in.bits);
            if (in.bits > static_cast<uint64_t>(AtomicOp::CompareExchange)) fail(&in, "atomic op {}", in.bits);
            arity(in, a == AtomicOp::CompareExchange ? 3 : 2);
            for (size_t i = 1; i < in.args.size(); ++i) expect(in, i, t, "operand");
            bool ints = t == ScalarType::u32 || t == ScalarType::i32;
            if (elem != t || !(ints || (t == ScalarType::f32 && a == AtomicOp::Add)))
              fail(&in, "atomic {} on {} (u32 and i32 take every atomic; f32 only add)", atomic_name(a),
                   type_name(elem));
          }
          break;
        }
        case Op::LoadVector:
        case Op::StoreVector: {
          if (in.lanes != 2 && in.lanes != 4 && in.lanes != 8) fail(&in, "{} lanes (2, 4 or 8)", in.lanes);
          arity(in, op == Op::LoadVector ? 1 : 1 + size_t{in.lanes});
          if (ScalarType index = value(in, 0); index != ScalarType::u32 && index != ScalarType::u64)
            fail(&in, "index must be u32 or u64");
          ScalarType elem = memory_elem(in, op == Op::StoreVector, "stores to");
          if (t != elem || !is_value_type(t))
            fail(&in, "vector access of {} to memory of {}", type_name(t), type_name(elem));
          if (t == ScalarType::boolean) fail(&in, "vector of bool");
          check_hint(in);
          for (size_t i = 1; i < in.args.size(); ++i) expect(in, i, t, "stored value");
          break;
        }
        case Op::CopyAsync: {
          // Threadgroup array `param` <- tensor `bits`, `lanes` elements of 4, 8 or 16 bytes in all.
          arity(in, 2);
          for (size_t i = 0; i < 2; ++i)
            if (ScalarType index = value(in, i); index != ScalarType::u32 && index != ScalarType::u64)
              fail(&in, "index must be u32 or u64");
          if (in.space != MemSpace::Threadgroup) fail(&in, "copies into threadgroup memory only");
          ScalarType elem = use(in, in.param, IdKind::Array).type;
          if (in.bits >= f_.params.size() || f_.params[in.bits].kind != ParamKind::Tensor)
            fail(&in, "source parameter #{} is not a tensor", in.bits);
          const Param& src = f_.params[in.bits];
          if (src.elem != elem || t != elem)
            fail(&in, "copies '{}' of {} into an array of {} as {}", src.name, type_name(src.elem), type_name(elem),
                 type_name(t));
          size_t bytes = size_t{in.lanes} * storage_bytes(elem);
          if (bytes != 4 && bytes != 8 && bytes != 16)
            fail(&in, "{} elements of {} are {} bytes (4, 8 or 16)", in.lanes, type_name(elem), bytes);
          break;
        }
        case Op::CopyAsyncCommit:
        case Op::CopyAsyncWait: arity(in, 0); break;
        case Op::MbarrierInit:
        case Op::MbarrierArrive:
        case Op::MbarrierWait: {
          // An element of a u64 threadgroup array; init: index, count; arrive: index (and the bytes it
          // expects); wait: index, parity.
          const bool expects = in.op == Op::MbarrierArrive && in.bits == kArriveExpectBytes;
          arity(in, in.op == Op::MbarrierArrive && !expects ? 1 : 2);
          expect(in, 0, ScalarType::u32, "barrier index");
          if (in.op != Op::MbarrierArrive || expects)
            expect(in, 1, ScalarType::u32, in.op == Op::MbarrierInit ? "count" : expects ? "bytes" : "parity");
          if (in.space != MemSpace::Threadgroup) fail(&in, "mbarriers live in threadgroup memory");
          if (ScalarType elem = use(in, in.param, IdKind::Array).type; elem != ScalarType::u64)
            fail(&in, "mbarriers are elements of a u64 threadgroup array, not of {}", type_name(elem));
          if (in.bits > (in.op == Op::MbarrierArrive ? kArriveExpectBytes : 0u))
            fail(&in, "flag {} (arrive: 0, 1 or 2, else 0)", in.bits);
          break;
        }
        case Op::CopyTile: {
          // Array `param` <- a box of tensor `bits`: index, mbarrier array and index, then per dim a
          // coordinate (i32), a dim and a box size (u32), and a stride for each dim past the first.
          const uint32_t rank = copy_tile_rank(in);
          if (rank < 1 || rank > 3) fail(&in, "rank {} (1 to 3)", rank);
          arity(in, copy_tile_args(rank));
          if (ScalarType index = value(in, 0); index != ScalarType::u32 && index != ScalarType::u64)
            fail(&in, "index must be u32 or u64");
          if (in.space != MemSpace::Threadgroup) fail(&in, "copies into threadgroup memory only");
          ScalarType elem = use(in, in.param, IdKind::Array).type;
          if (ScalarType bars = use(in, in.args[1], IdKind::Array).type; bars != ScalarType::u64)
            fail(&in, "its mbarrier array %{} holds {}, not u64 mbarriers", in.args[1], type_name(bars));
          expect(in, 2, ScalarType::u32, "barrier index");
          const int src = copy_source(in);
          if (src >= static_cast<int>(f_.params.size()) || f_.params[src].kind != ParamKind::Tensor)
            fail(&in, "source parameter #{} is not a tensor", src);
          if (f_.params[src].elem != elem || t != elem)
            fail(&in, "copies '{}' of {} into an array of {} as {}", f_.params[src].name,
                 type_name(f_.params[src].elem), type_name(elem), type_name(t));
          for (uint32_t d = 0; d < rank; ++d) {
            expect(in, copy_tile_coord_arg(in, d), ScalarType::i32, "coordinate");
            expect(in, copy_tile_dim_arg(in, d), ScalarType::u32, "dim");
            expect(in, copy_tile_box_arg(in, d), ScalarType::u32, "box size");
            if (d) expect(in, copy_tile_stride_arg(in, d), ScalarType::u32, "stride");
          }
          if (copy_tile_swizzle(in) != 0 && copy_tile_swizzle(in) != 128)
            fail(&in, "swizzle {} (0 or 128)", copy_tile_swizzle(in));
          break;
        }
        case Op::Mma: {
          // 8 A and 4 B elements of one 16-bit float type, 4 f32 C elements; 4 f32 lanes out.
          arity(in, 16);
          ScalarType ab = value(in, 0);
          if (ab != ScalarType::bf16 && ab != ScalarType::f16)
            fail(&in, "A and B elements are bf16 or f16, not {}", type_name(ab));
          for (size_t i = 1; i < 12; ++i) expect(in, i, ab, i < 8 ? "A element" : "B element");
          for (size_t i = 12; i < 16; ++i) expect(in, i, ScalarType::f32, "C element");
          if (t != ScalarType::f32 || in.lanes != 4)
            fail(&in, "gives 4 lanes of f32, not {} of {}", in.lanes, type_name(t));
          break;
        }
        case Op::MmaAsync: {
          // A's first index and strides (u32) or its 8 elements from registers, B's first index
          // and strides, then lanes = n / 2 f32 C elements.
          const uint32_t n = mma_async_n(in), swizzle = mma_async_swizzle(in);
          const size_t b_arg = mma_async_b_arg(in), c_arg = mma_async_c_arg(in);
          if (n < 8 || n > 256 || n % 8 != 0) fail(&in, "n = {} (8 to 256, a multiple of 8)", n);
          if (swizzle != 0 && swizzle != 128) fail(&in, "swizzle {} (0 or 128)", swizzle);
          if (mma_async_b_kn(in) && swizzle != 128) fail(&in, "B stored [k][n] without swizzle 128");
          if (in.bits >> 34) fail(&in, "bits {:#x} past n, the swizzle and the operands' layouts", in.bits);
          if (t != ScalarType::f32 || in.lanes != n / 2)
            fail(&in, "gives n / 2 = {} lanes of f32, not {} of {}", n / 2, in.lanes, type_name(t));
          arity(in, c_arg + size_t{in.lanes});
          if (in.space != MemSpace::Threadgroup) fail(&in, "reads threadgroup memory only");
          ScalarType elem = use(in, in.param, IdKind::Array).type;
          if (elem != ScalarType::bf16 && elem != ScalarType::f16)
            fail(&in, "A and B from an array of {} (bf16 or f16)", type_name(elem));
          for (size_t i = 0; i < b_arg; ++i)
            expect(in, i, mma_async_a_registers(in) ? elem : ScalarType::u32,
                   mma_async_a_registers(in) ? "A element" : "index or stride");
          for (size_t i = b_arg; i < c_arg; ++i) expect(in, i, ScalarType::u32, "index or stride");
          for (size_t i = c_arg; i < in.args.size(); ++i) expect(in, i, ScalarType::f32, "C element");
          break;
        }
        case Op::MmaFence: arity(in, 0); break;
        case Op::MmaWait:
          if (in.lanes == 0 || t != ScalarType::f32) fail(&in, "gives {} lanes of {} (f32)", in.lanes, type_name(t));
          arity(in, in.lanes);
          for (size_t i = 0; i < in.args.size(); ++i) expect(in, i, ScalarType::f32, "accumulator element");
          break;
        case Op::LoadMatrix: {
          // lanes / 2 matrices of 8 x 8 16-bit elements, each lane giving one row's first index.
          arity(in, 1);
          if (in.lanes != 2 && in.lanes != 4 && in.lanes != 8) fail(&in, "{} lanes (2, 4 or 8)", in.lanes);
          if (value(in, 0) != ScalarType::u32) fail(&in, "index must be u32");
          if (in.space != MemSpace::Threadgroup) fail(&in, "reads threadgroup memory only");
          if (in.bits > 1) fail(&in, "transpose flag {} (0 or 1)", in.bits);
          ScalarType elem = use(in, in.param, IdKind::Array).type;
          if (t != elem || (t != ScalarType::bf16 && t != ScalarType::f16))
            fail(&in, "matrix load of {} from an array of {} (bf16 or f16, the array's type)", type_name(t),
                 type_name(elem));
          break;
        }
        case Op::Extract: {
          arity(in, 1);
          const IdInfo& v = use(in, in.args[0], IdKind::Vector);
          if (v.type != t) fail(&in, "type {} but the vector holds {}", type_name(t), type_name(v.type));
          if (in.bits >= static_cast<uint64_t>(v.lanes)) fail(&in, "lane {} of a {}-lane vector", in.bits, v.lanes);
          break;
        }
        case Op::LocalDecl:
          arity(in, 1);
          expect(in, 0, t, "initial value");
          break;
        case Op::LocalGet:
          if (use(in, in.param, IdKind::Local).type != t) fail(&in, "type differs from the local's");
          break;
        case Op::LocalSet:
          arity(in, 1);
          expect(in, 0, use(in, in.param, IdKind::Local).type, "assigned value");
          break;
        case Op::TgArrayDecl:
          if (in.bits == 0) fail(&in, "threadgroup array of zero elements");
          if (t == ScalarType::boolean) fail(&in, "threadgroup arrays of bool are not supported");
          break;
        case Op::Barrier: arity(in, 0); break;
        case Op::Fence:
          // Device scope only: threadgroup memory is ordered by barriers.
          arity(in, 0);
          if (in.space != MemSpace::Device) fail(&in, "a fence orders device memory only (use a barrier)");
          if (in.bits > 1) fail(&in, "fence scope {} (0 device, 1 system)", in.bits);
          break;
        case Op::SimdSum:
        case Op::SimdMax:
        case Op::SimdMin:
        case Op::TgReduceSum:
        case Op::TgReduceMax:
        case Op::TgReduceMin:
          arity(in, 1);
          expect(in, 0, t, "operand");
          if (t == ScalarType::boolean) fail(&in, "reduction of bool");
          break;
        case Op::ShuffleXor:
        case Op::ShuffleDown:
          arity(in, 2);
          expect(in, 0, t, "value");
          expect(in, 1, ScalarType::u32, "lane operand");
          break;
        case Op::If:
          arity(in, 1);
          expect(in, 0, ScalarType::boolean, "condition");
          if (in.blocks.size() != 2) fail(&in, "needs then and else blocks");
          break;
        case Op::For:
          arity(in, 3);
          for (size_t i = 0; i < 3; ++i) expect(in, i, ScalarType::u32, "loop bound");
          if (t != ScalarType::u32) fail(&in, "induction must be u32");
          if (in.blocks.size() != 1) fail(&in, "needs one body block");
          break;
        case Op::Loop:
          arity(in, 0);
          if (in.blocks.size() != 1) fail(&in, "needs one body block");
          break;
        case Op::Break:
        case Op::Continue:
          arity(in, 0);
          if (loops_ == 0) fail(&in, "{} outside a for or loop", op_name(op));
          break;
        case Op::Return: arity(in, 0); break;
        case Op::Call:
          if (!in.callee) fail(&in, "call without a callee");
          for (const CallArg& a : in.call_args) {
            if (a.kind == CallArg::Kind::Value) {
              use(in, a.value, IdKind::Value);
            } else if (a.param < 0 || a.param >= static_cast<int>(f_.params.size()) ||
                       f_.params[a.param].kind != ParamKind::Tensor) {
              fail(&in, "tensor argument #{} is not a tensor parameter", a.param);
            }
          }
          break;
        default: fail(&in, "unknown op");
      }
    }
    if (in.op != Op::If && in.op != Op::For && in.op != Op::Loop && !in.blocks.empty()) fail(&in, "has nested blocks");
    if (in.lanes != 1 && in.op != Op::LoadVector && in.op != Op::StoreVector && in.op != Op::Mma &&
        in.op != Op::CopyAsync && in.op != Op::CopyTile && in.op != Op::LoadMatrix && in.op != Op::MmaAsync &&
        in.op != Op::MmaWait)
      fail(&in, "lanes {} on a scalar op", in.lanes);
    if (in.op == Op::For) {
      // The induction value is visible in the body only.
      if (in.result == kNoId || in.result >= f_.next_id) fail(&in, "induction id %{} is out of range", in.result);
      if (!ids_.emplace(in.result, IdInfo{IdKind::Value, ScalarType::u32, true}).second)
        fail(&in, "defines %{} twice", in.result);
      ++loops_;
      block(in.blocks[0]);
      --loops_;
      ids_[in.result].visible = false;
      return;
    }
    if (in.op == Op::Loop) ++loops_;
    for (const Block& b : in.blocks) block(b);
    if (in.op == Op::Loop) --loops_;
    switch (in.op) {
      case Op::Store:
      case Op::StoreVector:
      case Op::CopyAsync:
      case Op::CopyTile:
      case Op::CopyAsyncCommit:
      case Op::CopyAsyncWait:
      case Op::MbarrierInit:
      case Op::MbarrierArrive:
      case Op::MbarrierWait:
      case Op::LocalSet:
      case Op::Barrier:
      case Op::Fence:
      case Op::MmaFence:
      case Op::If:
      case Op::Loop:
      case Op::Break:
      case Op::Continue:
      case Op::Return:
        if (in.result != kNoId) fail(&in, "defines an id but has no result");
        break;
      case Op::LocalDecl: define(in, IdKind::Local, scope); break;
      case Op::TgArrayDecl: define(in, IdKind::Array, scope); break;
      case Op::LoadVector:
      case Op::LoadMatrix:
      case Op::Mma:
      case Op::MmaAsync:
      case Op::MmaWait: define(in, IdKind::Vector, scope); break;
      default: define(in, IdKind::Value, scope); break;
    }
  }

  // An array that holds mbarriers holds nothing else: a load or store of a barrier object has no
  // meaning the backends share (the CPU engine keeps barrier state apart from the bytes).
  void barrier_arrays_only() {
    std::unordered_map<Id, const Inst*> barriers;
    for_each_inst(f_.body, [&](const Inst& in) {
      if (is_mbarrier(in.op)) barriers.emplace(in.param, &in);
    });
    if (barriers.empty()) return;
    for_each_inst(f_.body, [&](const Inst& in) {
      if (names_slot(in) && !is_mbarrier(in.op) && in.op != Op::LocalGet && in.op != Op::LocalSet &&
          barriers.count(in.param))
        fail(&in, "threadgroup array %{} holds mbarriers (used by '{}'), which only mbarrier ops may touch", in.param,
             op_name(barriers.at(in.param)->op));
    });
  }

  const Function& f_;
  std::unordered_map<Id, IdInfo> ids_;
  int depth_ = 0, loops_ = 0;  // blocks and loops around the instruction being checked
};

}  // namespace

void verify(const Function& f) {
  Verifier(f).run();
}

}  // namespace mtile::ir
