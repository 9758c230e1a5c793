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

// Every IR operation, as X(Name, "text", Kind). docs/IR.md defines what each means; the CPU
// engine executes them. The kind says how an op takes its operands:
//   Leaf, Builtin           no operands (Const: `bits`; ConstexprRef, ScalarRef: `param`; builtins: axis in `bits`)
//   Unary, Math, Test       args[0]; Math ops are float-only and round like arithmetic; Test ops give bool
//   Binary, Compare         args[0], args[1] of one type (Compare gives bool)
//   Ternary                 Select (cond, a, b), Fma (a * b + c, one rounding)
//   Memory                  `space` and `param` (tensor parameter or threadgroup array id), see below
//   Local, Decl             mutable locals and threadgroup arrays
//   Sync, Simd, TgReduce    barrier, fence and async-copy groups; 32-lane simdgroup ops (Mma among
//                           them); threadgroup reductions (lowered by a pass)
//   Control, Call           structured control flow; calls of other kernels (inlined by a pass)
#define MTILE_FOR_EACH_IR_OP(X)                                                                         \
  X(Const, "const", Leaf)                                                                               \
  X(ConstexprRef, "constexpr", Leaf)                                                                    \
  X(ScalarRef, "scalar", Leaf) /* a scalar parameter's value, of its type */                            \
  X(ProgramId, "program_id", Builtin)                                                                   \
  X(ThreadId, "thread_id", Builtin)                                                                     \
  X(ThreadgroupSize, "threadgroup_size", Builtin)                                                       \
  X(GridSize, "grid_size", Builtin)                                                                     \
  X(SimdLane, "simd_lane", Builtin)                                                                     \
  X(SimdGroup, "simd_group", Builtin)                                                                   \
  X(Neg, "neg", Unary)                                                                                  \
  X(Not, "not", Unary)                                                                                  \
  X(Abs, "abs", Unary)                                                                                  \
  X(Cast, "cast", Unary)       /* to `type`, converting the value */                                    \
  X(Bitcast, "bitcast", Unary) /* to `type` of the same width, keeping the bits */                      \
  X(Floor, "floor", Math)                                                                               \
  X(Sqrt, "sqrt", Math)                                                                                 \
  X(Rsqrt, "rsqrt", Math)                                                                               \
  X(Exp, "exp", Math)                                                                                   \
  X(Exp2, "exp2", Math)                                                                                 \
  X(Log, "log", Math)                                                                                   \
  X(Log1p, "log1p", Math)                                                                               \
  X(Expm1, "expm1", Math)                                                                               \
  X(Tanh, "tanh", Math)                                                                                 \
  X(Erf, "erf", Math)                                                                                   \
  X(Sin, "sin", Math)                                                                                   \
  X(Cos, "cos", Math)                                                                                   \
  X(Sigmoid, "sigmoid", Math)                                                                           \
  X(Exp2Ftz, "exp2_ftz", Math) /* exp2 with results below 2^-126 flushed to +0 */                       \
  X(IsNan, "isnan", Test)                                                                               \
  X(IsInf, "isinf", Test)                                                                               \
  X(Add, "add", Binary)                                                                                 \
  X(Sub, "sub", Binary)                                                                                 \
  X(Mul, "mul", Binary)                                                                                 \
  X(Div, "div", Binary)                                                                                 \
  X(Rem, "rem", Binary)                                                                                 \
  X(Min, "min", Binary)                                                                                 \
  X(Max, "max", Binary)                                                                                 \
  X(Pow, "pow", Binary) /* floats only */                                                               \
  X(BitAnd, "and", Binary)                                                                              \
  X(BitOr, "or", Binary)                                                                                \
  X(BitXor, "xor", Binary)                                                                              \
  X(Shl, "shl", Binary)                                                                                 \
  X(Shr, "shr", Binary)                                                                                 \
  X(Lt, "lt", Compare)                                                                                  \
  X(Le, "le", Compare)                                                                                  \
  X(Gt, "gt", Compare)                                                                                  \
  X(Ge, "ge", Compare)                                                                                  \
  X(Eq, "eq", Compare)                                                                                  \
  X(Ne, "ne", Compare)                                                                                  \
  X(Select, "select", Ternary)                                                                          \
  X(Fma, "fma", Ternary)                                                                                \
  /* Memory. Load: args index[, mask, other]; Store: index, value[, mask]. A masked access whose */     \
  /* mask is false touches no memory (Load gives `other`). LoadVector/StoreVector: `lanes` */           \
  /* consecutive elements from a multiple of `lanes`; Extract reads lane `bits` of a vector value. */   \
  /* Load, Store, LoadVector, StoreVector of device memory: `bits` is a CacheHint (0: none). */         \
  /* Atomic: args index, value[, compare]; `bits` is the AtomicOp; gives the old value. */              \
  X(Load, "load", Memory)                                                                               \
  X(Store, "store", Memory)                                                                             \
  X(LoadVector, "load_vector", Memory)                                                                  \
  X(Extract, "extract", Memory)                                                                         \
  X(StoreVector, "store_vector", Memory)                                                                \
  X(Atomic, "atomic", Memory)                                                                           \
  /* CopyAsync: threadgroup array `param` [args[0] ..] <- tensor parameter `bits` [args[1] ..], */      \
  /* `lanes` elements (4, 8 or 16 bytes), each index a multiple of `lanes`; `type` the element. */      \
  X(CopyAsync, "copy_async", Memory)                                                                    \
  /* CopyTile (TMA): threadgroup array `param` [args[0] ..] <- a box of tensor parameter `bits`, */     \
  /* viewed as a rank-`lanes` array; completes as transactions on mbarrier args[2] of the u64 */        \
  /* array args[1] (an array id, not a value); see copy_tile_* below and docs/IR.md "Tile copies". */   \
  X(CopyTile, "copy_tile", Memory)                                                                      \
  X(LocalDecl, "local", Local)              /* defines local `result` of `type`; args: initial value */ \
  X(LocalGet, "get", Local)                 /* param: local id */                                       \
  X(LocalSet, "set", Local)                 /* param: local id; args: value */                          \
  X(TgArrayDecl, "threadgroup_array", Decl) /* `type`[bits] */                                          \
  X(Barrier, "barrier", Sync)                                                                           \
  X(Fence, "fence", Sync) /* device scope: orders this thread's device memory accesses (docs/IR.md) */  \
  X(CopyAsyncCommit, "copy_async_commit", Sync) /* this thread's copy_asyncs so far make a group */     \
  X(CopyAsyncWait, "copy_async_wait", Sync)     /* until at most `bits` of its groups are pending */    \
  /* Mbarriers: element args[0] of u64 threadgroup array `param` is a barrier object (docs/IR.md). */   \
  /* Init: args index, count (arrivals a phase takes). Arrive: args index; `bits` 1 arrives once */     \
  /* this thread's copy_asyncs are complete; `bits` 2: args index, bytes: arrives and expects that */   \
  /* many bytes of copy_tile transactions. Wait: args index, parity: until that phase completed. */     \
  X(MbarrierInit, "mbarrier_init", Sync)                                                                \
  X(MbarrierArrive, "mbarrier_arrive", Sync)                                                            \
  X(MbarrierWait, "mbarrier_wait", Sync)                                                                \
  X(SimdSum, "simd_sum", Simd)                                                                          \
  X(SimdMax, "simd_max", Simd)                                                                          \
  X(SimdMin, "simd_min", Simd)                                                                          \
  X(ShuffleXor, "shuffle_xor", Simd)   /* args: value, lane mask */                                     \
  X(ShuffleDown, "shuffle_down", Simd) /* args: value, delta; lanes past the end keep their value */    \
  /* Mma: D = A B + C of m16n8k16 with per-lane fragments (docs/IR.md); args: 8 A elements, 4 B */      \
  /* (both bf16 or both f16), 4 C (f32); defines a vector of 4 f32 lanes that Extract reads. */         \
  X(Mma, "mma", Simd)                                                                                   \
  /* LoadMatrix: lanes / 2 8 x 8 matrices of 16-bit elements from threadgroup array `param`, each */    \
  /* lane giving args[0], the first element of one row; `bits` 1 transposes (docs/IR.md). */            \
  X(LoadMatrix, "load_matrix", Simd)                                                                    \
  /* MmaAsync (sm_90a wgmma): a warpgroup's D (64 x n) = A (64 x 16) B (16 x n) + C with A and B in */  \
  /* threadgroup array `param` as core matrices, swizzled or not (docs/IR.md; `bits`: n and the */      \
  /* swizzle, mma_async_n/_swizzle); args: A's first index, its k and row strides, then B's, then */    \
  /* `lanes` C elements (f32); D is pending until mma_wait. */                                          \
  X(MmaAsync, "mma_async", Simd)                                                                        \
  X(MmaFence, "mma_fence", Simd) /* orders this thread's threadgroup writes before later mma_asyncs */  \
  /* MmaWait: commits this thread's mma_asyncs and waits until at most `bits` groups are pending; */    \
  /* args: accumulator elements, given back as `lanes` lanes of f32 that may then be read. */           \
  X(MmaWait, "mma_wait", Simd)                                                                          \
  X(TgReduceSum, "threadgroup_reduce_sum", TgReduce)                                                    \
  X(TgReduceMax, "threadgroup_reduce_max", TgReduce)                                                    \
  X(TgReduceMin, "threadgroup_reduce_min", TgReduce)                                                    \
  X(If, "if", Control)       /* args: cond; blocks[0] then, blocks[1] else */                           \
  X(For, "for", Control)     /* args: start, end, step; defines the induction; blocks[0] body */        \
  X(Loop, "loop", Control)   /* blocks[0] runs until a break or return leaves it */                     \
  X(Break, "break", Control) /* leaves the innermost for or loop */                                     \
  X(Continue, "continue", Control)                                                                      \
  X(Return, "return", Control) /* this thread runs nothing more */                                      \
  X(Call, "call", Call)

enum class Op : uint8_t {
#define MTILE_IR_OP_ENUM(name, text, kind) name,
  MTILE_FOR_EACH_IR_OP(MTILE_IR_OP_ENUM)
#undef MTILE_IR_OP_ENUM
};

enum class OpKind : uint8_t {
  Leaf,
  Builtin,
  Unary,
  Math,
  Test,
  Binary,
  Compare,
  Ternary,
  Memory,
  Local,
  Decl,
  Sync,
  Simd,
  TgReduce,
  Control,
  Call
};

// What an Atomic does with the memory element m and its value v (and compare c): m = op(m, v).
enum class AtomicOp : uint8_t { Add, Min, Max, Exchange, CompareExchange };
const char* atomic_name(AtomicOp a);

// A device access's hint to the caches, in `bits` of Load, Store, LoadVector and StoreVector
// (docs/IR.md). It changes how long the lines stay in L2, never what is read or written: Keep for
// data read again soon (evicted last), Stream for data touched once (evicted first).
enum class CacheHint : uint8_t { Normal, Keep, Stream };
const char* cache_hint_name(CacheHint h);  // "", "keep", "stream"

const char* op_name(Op op);
OpKind op_kind(Op op);
bool is_unary(Op op);       // Unary, Math and Test kinds
bool is_binary(Op op);      // Binary and Compare kinds
bool is_comparison(Op op);  // Compare kind
bool is_builtin(Op op);
bool is_float_math(Op op);  // Math kind
// True for ops whose only effect is their result (safe to remove when unused).
bool is_pure(Op op);
inline bool is_mbarrier(Op op) {
  return op == Op::MbarrierInit || op == Op::MbarrierArrive || op == Op::MbarrierWait;
}

enum class MemSpace : uint8_t { Device, Threadgroup };
// Tensor: a buffer of `elem`. Constexpr: a u32 known before launch (may be baked into the code).
// Scalar: a value of `elem` passed by value at each launch.
enum class ParamKind : uint8_t { Tensor, Constexpr, Scalar };
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
  // A tensor that may share its memory with another so marked (KernelSpec::may_alias): passes keep
  // their accesses in order as if they were one tensor, and CUDA does not declare it __restrict__.
  bool may_alias = false;
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
  uint8_t lanes = 1;  // LoadVector, StoreVector, LoadMatrix: 2, 4 or 8; Mma: 4; MmaAsync, MmaWait: D's elements
                      // a thread holds; CopyAsync: elements copied
  std::vector<Block> blocks;
  std::shared_ptr<const Function> callee;
  std::vector<CallArg> call_args;
  std::string name;  // optional: a readable name for the defined id
  SourceLoc loc;
};

// MmaAsync's `bits`: n in the low 16 bits, the operands' swizzle above them (0: none; 128: rows of
// 128 bytes whose 16-byte chunks are permuted, docs/IR.md), bit 32 set where B is stored [k][n]
// (its rows are k: wgmma's transposed, "N-major" B), bit 33 where A comes from registers (each
// thread's 8 elements of its simdgroup's 16 rows, as mma's A: args 0-7, B's three after them).
inline CacheHint cache_hint(const Inst& in) {
  return static_cast<CacheHint>(in.bits);
}
inline uint32_t mma_async_n(const Inst& in) {
  return static_cast<uint32_t>(in.bits & 0xffff);
}
inline uint32_t mma_async_swizzle(const Inst& in) {
  return static_cast<uint32_t>((in.bits >> 16) & 0xffff);
}
inline bool mma_async_b_kn(const Inst& in) {
  return (in.bits >> 32) & 1;
}
inline bool mma_async_a_registers(const Inst& in) {
  return (in.bits >> 33) & 1;
}
inline uint64_t mma_async_bits(uint32_t n, uint32_t swizzle, bool b_kn = false, bool a_registers = false) {
  return n | uint64_t{swizzle} << 16 | uint64_t{b_kn} << 32 | uint64_t{a_registers} << 33;
}
// MmaAsync's args: where B's first index is, and where the C elements begin.
inline size_t mma_async_b_arg(const Inst& in) {
  return mma_async_a_registers(in) ? 8 : 3;
}
inline size_t mma_async_c_arg(const Inst& in) {
  return mma_async_b_arg(in) + 3;
}

// CopyTile's operands. The view has rank r = `lanes` (1 to 3): dims[0] elements a row (contiguous),
// strides[i - 1] elements between consecutive indices of dim i >= 1. args: [0] the destination's
// first index, [1] the mbarrier array, [2] the barrier's index, then r coordinates (i32, dim 0
// first), r dims, r - 1 strides and r box sizes (u32; the box sizes constants). `bits`: the source
// tensor parameter in the low 32 bits, the destination's swizzle above (0: none; 128: 128-byte
// rows whose 16-byte chunks are permuted, as mma_async reads them).
constexpr uint64_t kArriveAfterCopies = 1, kArriveExpectBytes = 2;  // MbarrierArrive's `bits`
inline uint32_t copy_tile_rank(const Inst& in) {
  return in.lanes;
}
inline uint32_t copy_tile_swizzle(const Inst& in) {
  return static_cast<uint32_t>(in.bits >> 32);
}
inline uint64_t copy_tile_bits(int tensor, uint32_t swizzle) {
  return static_cast<uint32_t>(tensor) | uint64_t{swizzle} << 32;
}
inline size_t copy_tile_coord_arg(const Inst&, uint32_t d) {
  return 3 + d;
}
inline size_t copy_tile_dim_arg(const Inst& in, uint32_t d) {
  return 3 + copy_tile_rank(in) + d;
}
inline size_t copy_tile_stride_arg(const Inst& in, uint32_t d) {  // d >= 1
  return 3 + 2 * copy_tile_rank(in) + d - 1;
}
inline size_t copy_tile_box_arg(const Inst& in, uint32_t d) {
  return 3 + 3 * copy_tile_rank(in) - 1 + d;
}
inline size_t copy_tile_args(uint32_t rank) {
  return 3 + 4 * size_t{rank} - 1;
}

struct Function {
  std::string name;
  Mode mode = Mode::Reduction;
  ScalarType dtype = ScalarType::f32;  // the T this variant was traced with
  // Threads per threadgroup every launch of this code uses; 0 = any (specialize_threadgroup_size).
  uint32_t tpg = 0;
  // Threadgroups of this code a multiprocessor should hold at once, as the kernel asked
  // (dsl::resident_threadgroups); 0 = no request. With tpg it caps the registers of a thread (CUDA:
  // __launch_bounds__(tpg, resident)).
  uint32_t resident = 0;
  std::vector<Param> params;
  Block body;
  Id next_id = 0;

  Id fresh_id() { return next_id++; }
  int param_index(const std::string& n) const;  // -1 if absent
  int output_param() const;                     // the single Out parameter, or -1 (used by calls)
};

// Whether accesses to tensor parameters a and b may reach the same memory: a == b, or both are
// marked may_alias.
bool may_share_memory(const Function& f, int a, int b);

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
// Throws Error naming the kernel and the source line when a barrier, a threadgroup reduction or a
// call that synchronizes is in control flow that differs between threads, or a simdgroup
// operation in control flow that differs within a simdgroup (src/ir/uniformity.cpp).
void check_uniformity(const Function& f);
// Reorders side-effect-free instructions into one canonical order and renumbers ids, so that a
// kernel prints the same whichever order the C++ compiler traced its operands in.
void canonicalize(Function& f);
// Structural hash: equal for functions that print the same, ignoring source locations.
uint64_t structural_hash(const Function& f);

}  // namespace mtile::ir
