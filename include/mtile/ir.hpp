// mtile's IR: typed scalar values, structured control flow, mutable locals, threadgroup arrays.
// docs/IR.md defines the semantics; the CPU engine (src/backends/cpu) executes them exactly.
//
// A Function is a tree of Blocks. Every Inst defines at most one id (`result`): a value, a local
// variable, a threadgroup array, or a loop's induction value. Ids share one namespace per Function.
// A value is visible after its definition in its own block and in blocks nested below it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtile/types.hpp"

namespace mtile::ir {

using Id = int32_t;
constexpr Id kNoId = -1;

enum class Op : uint8_t {
  // Leaves.
  Const,         // bits: u32/i32 bits, float bits for float types, 0/1 for bool
  ConstexprRef,  // param: index of a Constexpr parameter; type u32
  ProgramId,     // bits: axis 0..2; index of this threadgroup in the grid
  ThreadId,      // index of this thread in its threadgroup (x)
  ThreadgroupSize,
  GridSize,   // bits: axis; number of threadgroups along the axis
  SimdLane,   // tid % 32
  SimdGroup,  // tid / 32
  // Unary (args[0]).
  Neg,
  Not,
  Abs,
  Floor,
  Sqrt,
  Rsqrt,
  Exp,
  Exp2,
  Log,
  Tanh,
  Erf,
  Sin,
  Cos,
  Cast,  // to `type`
  // Binary (args[0], args[1]), same operand types.
  Add,
  Sub,
  Mul,
  Div,
  Rem,
  Min,
  Max,
  BitAnd,
  BitOr,
  BitXor,
  Shl,
  Shr,
  Lt,
  Le,
  Gt,
  Ge,
  Eq,
  Ne,  // result bool
  // Ternary.
  Select,  // args: cond (bool), a, b
  Fma,     // args: a, b, c -> a * b + c, one rounding
  // Memory. `space` picks device (param = tensor parameter index) or threadgroup (param = array id).
  Load,   // args: index (u32)
  Store,  // args: index (u32), value
  // Vector memory (device tensors only; vectorize_memory forms them): `lanes` consecutive
  // elements from index args[0], which must be a multiple of `lanes`. `type` is the element type.
  LoadVector,   // args: index (u32); defines a vector value that only Extract reads
  Extract,      // args: vector value; bits: lane; defines a scalar of `type`
  StoreVector,  // args: index (u32), one value per lane
  LocalDecl,    // defines local `result` of `type`; args: initial value
  LocalGet,     // param: local id
  LocalSet,     // param: local id; args: value
  TgArrayDecl,  // defines threadgroup array `result` of `type`, bits = element count
  Barrier,      // threadgroup barrier (threadgroup memory)
  // Cross-lane operations over the 32-lane simdgroup; all lanes of the simdgroup take part.
  SimdSum,
  SimdMax,
  SimdMin,
  ShuffleXor,   // args: value, lane mask (u32)
  ShuffleDown,  // args: value, delta (u32); lanes past the end keep their own value
  // Threadgroup-wide reductions; lower_threadgroup_reductions rewrites them before any backend.
  TgReduceSum,
  TgReduceMax,
  TgReduceMin,
  // Structured control flow.
  If,    // args: cond; blocks[0] then, blocks[1] else
  For,   // args: start, end, step (u32); defines induction `result`; blocks[0] body
  Call,  // call of `callee`; see CallArg; inline_calls removes it
};

const char* op_name(Op op);
bool is_unary(Op op);
bool is_binary(Op op);
bool is_comparison(Op op);
// True for ops whose only effect is their result (safe to remove when unused).
bool is_pure(Op op);

enum class MemSpace : uint8_t { Device, Threadgroup };
enum class ParamKind : uint8_t { Tensor, Constexpr };
enum class Role : uint8_t { In, Out, InOut };
enum class Mode : uint8_t { Elementwise, Reduction };

const char* role_name(Role r);
const char* mode_name(Mode m);

struct SourceLoc {
  const char* file = nullptr;
  int line = 0;
  static SourceLoc current(const char* f = __builtin_FILE(), int l = __builtin_LINE()) { return {f, l}; }
  std::string str() const;  // "file.cpp:12" or "" when unknown
};

struct Param {
  std::string name;
  ParamKind kind = ParamKind::Tensor;
  ScalarType elem = ScalarType::f32;  // tensors: element type; constexprs: u32
  Role role = Role::In;
};

struct Function;
struct Inst;
struct Block {
  std::vector<Inst> insts;
};

// One argument of a Call, matched in order to the callee's parameters that are not outputs.
struct CallArg {
  enum class Kind : uint8_t { Value, Tensor } kind = Kind::Value;
  Id value = kNoId;  // Value: a value of the caller (for a tensor parameter it replaces the loads)
  int param = -1;    // Tensor: the caller's tensor parameter index
};

struct Inst {
  Op op = Op::Const;
  ScalarType type = ScalarType::boolean;  // result type; element type for Store/TgArrayDecl
  Id result = kNoId;
  std::vector<Id> args;
  uint64_t bits = 0;
  int param = -1;
  MemSpace space = MemSpace::Device;
  uint8_t lanes = 1;  // LoadVector, StoreVector: 2, 4 or 8
  std::vector<Block> blocks;
  std::shared_ptr<const Function> callee;
  std::vector<CallArg> call_args;
  std::string name;  // optional: a readable name for the defined id
  SourceLoc loc;
};

struct Function {
  std::string name;
  Mode mode = Mode::Reduction;
  ScalarType dtype = ScalarType::f32;  // the T this variant was traced with
  std::vector<Param> params;
  Block body;
  Id next_id = 0;

  Id fresh_id() { return next_id++; }
  int param_index(const std::string& n) const;  // -1 if absent
  int output_param() const;                     // the single Out parameter, or -1 (used by calls)
};

// Constants.
uint64_t const_bits(ScalarType t, double v);  // v rounded to t
double const_value(ScalarType t, uint64_t bits);

// Walks every instruction depth-first (parents before children).
template <class F>
void for_each_inst(const Block& b, F&& f) {
  for (const auto& in : b.insts) {
    f(in);
    for (const auto& sub : in.blocks) for_each_inst(sub, f);
  }
}
template <class F>
void for_each_inst(Block& b, F&& f) {
  for (auto& in : b.insts) {
    f(in);
    for (auto& sub : in.blocks) for_each_inst(sub, f);
  }
}

// Text form (docs/IR.md shows it): stable, one instruction a line.
std::string print(const Function& f);
// Throws Error naming the function and the first broken rule.
void verify(const Function& f);
// Reorders side-effect-free instructions into one canonical order and renumbers ids, so that a
// kernel prints the same whichever order the C++ compiler traced its operands in.
void canonicalize(Function& f);
// Structural hash: equal for functions that print the same, ignoring source locations.
uint64_t structural_hash(const Function& f);

}  // namespace mtile::ir
