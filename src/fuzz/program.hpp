// A generated kernel as a description: statements over numbered values, which trace_program turns
// into IR through the DSL. The shrinker edits this description (drops a statement, hoists a body)
// and traces it again, so every edit gives a valid kernel: an operand whose statement is gone
// becomes a constant of its type, and an index that relied on it stays in bounds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mtile/ir.hpp"
#include "mtile/registry.hpp"

namespace mtile::fuzz {

struct Stmt {
  enum class Kind : uint8_t {
    Const,         // value = `type` constant with bits `imm`
    Builtin,       // value = builtin `op` (u32); ProgramId/GridSize take axis `imm`
    ConstexprRef,  // value = constexpr parameter `slot`
    ScalarRef,     // value = scalar parameter `slot`
    Unary,         // value = op(args[0]); Cast and Bitcast (from `from`) to `type`; IsNan/IsInf give bool
    Binary,        // value = op(args[0], args[1]); integer Div/Rem divide by args[1], or 1 where it is 0
    Select,        // value = args[0] ? args[1] : args[2]
    Fma,           // value = fma(args[0], args[1], args[2])
    Load,          // value = input `slot` at the index `mode` says (see IndexMode), widened to its value type
    MaskedLoad,    // value = input `slot` at index args[0] where args[1] holds and the index is in
                   // bounds, else args[2]
    MaskedStore,   // output `tensor`, element gid * stride + slot = args[0] where args[1] holds
    AlignedBase,   // value = (args[0] % (count / imm)) * imm: a u32 base for `imm` loads of input `slot`
    WindowBase,    // value = args[0] & (P - 1), P the largest power of two <= count - imm + 1: a base
                   // for `imm` loads of input `slot`, aligned only as far as args[0] is
    Simd,          // value = op(args[0]) or op(args[0], args[1]) for shuffles; whole simdgroups
    Reduce,        // value = threadgroup reduction `op` of args[0]; every thread
    Exchange,      // every thread writes args[0] to its slot of a threadgroup array, barrier, reads
                   // slot `imm`-pattern (see exchange_index), barrier
    DeviceAtomic,  // value = atomic `atomic` on acc[args[0] % count] with args[1] (args[2]: compared)
    TgAtomic,      // every thread writes args[0] to its slot of a `type` threadgroup array, barrier,
                   // atomic `atomic` on slot args[1] % tpg with args[2] (args[3]: compared), barrier;
                   // value = the atomic's old value (`old_value`), or slot `imm`-pattern read back,
                   // then a barrier
    VarDecl,       // local `slot` = args[0]
    VarSet,        // local `slot` = args[0]
    VarGet,        // value = local `slot`
    If,            // if args[0] { body } else { orelse }
    For,           // for value = imm & 0xff; value < min(args[0], imm >> 8); value += step { body }
    While,         // trips = 0; while (trips < min(args[0], imm)) { trips += 1; body }
    Break,         // break_ out of the innermost for/while (nothing outside one)
    Continue,      // continue_ it
    Return,        // return_: this thread runs nothing more
    Store,         // output `tensor`, element gid * stride + slot = args[0]
    InOutLoad,     // value = inout[gid * stride + slot]
    InOutStore,    // inout[gid * stride + slot] = args[0]
  };
  enum class IndexMode : uint8_t {
    Own,       // gid * stride + imm (imm < stride): a thread's own elements, provably aligned
    Computed,  // args[0] % count, the count a literal or the tensor's length constexpr (imm = 1)
    Based,     // args[0] (an AlignedBase or WindowBase of this input and width) + imm
  };

  Kind kind = Kind::Const;
  ir::Op op = ir::Op::Const;
  ScalarType type = ScalarType::u32;  // of the value defined (Store, InOutStore: of the stored value)
  ScalarType from = ScalarType::u32;  // Cast: the operand's type; Binary: the operands' type
  std::vector<int> args;              // value numbers of operands
  uint64_t imm = 0;
  uint32_t step = 1;   // For: the literal step; 0: args[1] % 3 + 1
  uint32_t lanes = 0;  // Based loads: their base's width
  IndexMode mode = IndexMode::Own;
  ir::AtomicOp atomic = ir::AtomicOp::Add;
  bool old_value = false;  // TgAtomic: the value is the atomic's result
  int tensor = 0;          // Store, MaskedStore: which output
  int slot = 0;            // input tensor, output slot, inout slot, local, constexpr or scalar number
  int value = -1;          // the value number this statement defines, or -1
  std::vector<Stmt> body, orelse;
};

struct TensorDesc {
  std::string name;
  ScalarType elem = ScalarType::u32;
  uint32_t stride = 1;  // elements per thread: count = threads * stride (unless `count`)
  uint32_t count = 0;   // the acc tensor: this many elements, shared by every thread
  // Outputs and inout, per slot: a value of a transcendental function may be stored there, so a
  // GPU's result may differ from the engine's within its tolerance (docs/IR.md).
  std::vector<bool> inexact;
};

struct ConstexprDesc {
  std::string name;
  uint32_t value = 0;
  int length_of = -1;  // >= 0: the element count of that input (value is then ignored)
  bool bake = false;   // the full pipeline bakes it into the code
};

// A scalar parameter and the value each launch passes (its type's bits; f16/bf16 as the f32 bits).
struct ScalarDesc {
  std::string name;
  ScalarType type = ScalarType::u32;
  uint64_t bits = 0;
};

// Parameters in order: inputs, the inout tensor (if any), the acc tensor of atomics (if any),
// outputs, constexprs, scalars.
struct Program {
  Geometry geometry;
  std::vector<TensorDesc> inputs;
  bool has_inout = false;
  TensorDesc inout;
  bool has_acc = false;
  TensorDesc acc;                   // u32, i32 or f32, `count` elements, initialised from the seed
  std::vector<TensorDesc> outputs;  // at most one per element type; stride = slots per thread
  std::vector<ConstexprDesc> constexprs;
  std::vector<ScalarDesc> scalars;
  std::vector<Stmt> body;
  uint64_t seed = 0;  // of the generator; the inputs' contents derive from it too

  uint64_t threads() const { return geometry.threadgroups() * geometry.tpg; }
  uint64_t count(const TensorDesc& t) const { return t.count ? t.count : threads() * t.stride; }
  uint32_t constexpr_value(size_t c) const;
  int inout_param() const { return has_inout ? static_cast<int>(inputs.size()) : -1; }
  int acc_param() const { return has_acc ? static_cast<int>(inputs.size() + has_inout) : -1; }
  int output_param(size_t j) const { return static_cast<int>(inputs.size() + has_inout + has_acc + j); }
  int constexpr_param(size_t c) const { return output_param(outputs.size()) + static_cast<int>(c); }
  int scalar_param(size_t k) const { return constexpr_param(constexprs.size()) + static_cast<int>(k); }
  size_t param_count() const { return static_cast<size_t>(scalar_param(scalars.size())); }
  // The tensor behind parameter `p` (nullptr for a constexpr or scalar).
  const TensorDesc* tensor(int p) const;
  // What the engine's `values` hold for parameter `p`: a constexpr's value, a scalar's bits, 0.
  uint64_t value_bits(int p) const;
};

// Statements in the block (nested ones included).
size_t count_stmts(const std::vector<Stmt>& b);

// The IR of the program, traced through the DSL (so verified and canonical). Throws Error when
// the DSL rejects it: a generator bug.
ir::Function trace_program(const Program& p);

}  // namespace mtile::fuzz
