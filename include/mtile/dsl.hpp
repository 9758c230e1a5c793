// The kernel DSL: C++ functions that, when traced, record mtile IR.
//
//   template <class T>
//   void scale(In<T> x, Out<T> y, Constexpr n) {
//     Val i = program_id(0) * lsize() + tid();
//     if_(i < n, [&] { store(y[i], (load(x[i]).cast<f32>() * 2.0f).cast<T>()); });
//   }
//
// Every operation on a Val appends an instruction to the kernel being traced. Mistakes (mixed
// types, a store to an input, a value used outside its scope) throw mtile::Error naming the kernel.
// docs/writing-kernels.md is the guide; docs/IR.md defines what each operation means.
#pragma once
#include <array>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::dsl {

using ir::SourceLoc;

// Element type tags: kernels are templates over one of these.
struct u32 {
  static constexpr ScalarType type = ScalarType::u32;
};
struct i32 {
  static constexpr ScalarType type = ScalarType::i32;
};
struct f32 {
  static constexpr ScalarType type = ScalarType::f32;
};
struct f16 {
  static constexpr ScalarType type = ScalarType::f16;
};
struct bf16 {
  static constexpr ScalarType type = ScalarType::bf16;
};
struct u64 {
  static constexpr ScalarType type = ScalarType::u64;
};
struct i64 {
  static constexpr ScalarType type = ScalarType::i64;
};
// Memory-only element types: a load widens them (u8, u16 -> u32; i8, i16 -> i32; fp8 -> f32),
// a store narrows (docs/IR.md).
struct u8 {
  static constexpr ScalarType type = ScalarType::u8;
};
struct i8 {
  static constexpr ScalarType type = ScalarType::i8;
};
struct u16 {
  static constexpr ScalarType type = ScalarType::u16;
};
struct i16 {
  static constexpr ScalarType type = ScalarType::i16;
};
struct f8e4m3 {
  static constexpr ScalarType type = ScalarType::f8e4m3;
};
struct f8e5m2 {
  static constexpr ScalarType type = ScalarType::f8e5m2;
};

// A traced value: the id of an IR value and its type.
class Val {
 public:
  Val() = default;
  Val(ir::Id id, ScalarType type, uint32_t trace) : id(id), type(type), trace(trace) {}
  template <class T>
  Val cast() const {
    return cast(T::type);
  }
  Val cast(ScalarType to) const;

  ir::Id id = ir::kNoId;
  ScalarType type = ScalarType::boolean;
  uint32_t trace = 0;  // which trace made it: values never cross kernels
};

template <class L>
concept Literal = std::is_arithmetic_v<L> && !std::is_same_v<L, bool>;

namespace detail {
Val emit(ir::Op op, ScalarType type, std::initializer_list<Val> args, uint64_t bits = 0);
Val binary(ir::Op op, const Val& a, const Val& b);
Val literal(ScalarType t, double v);
// A literal written next to a typed value takes that value's type, if it fits it.
Val literal_like(const Val& ref, double v, bool float_literal);
void note_location(SourceLoc loc);
[[noreturn]] void trace_error(const std::string& what);
}  // namespace detail

// cast<T>(v): the free form of v.cast<T>(), for expressions whose type depends on a template
// parameter (where C++ would otherwise need `.template cast<T>()`).
template <class T>
Val cast(const Val& v) {
  return v.cast(T::type);
}

// Constants with an explicit type.
Val lit(float v);
Val lit(uint32_t v);
Val lit(int32_t v);
Val lit(uint64_t v);
Val lit(int64_t v);
Val lit(bool v);
Val lit(ScalarType t, double v);

#define MTILE_DSL_BINARY(sym, op)                                                                                   \
  inline Val operator sym(const Val& a, const Val& b) {                                                             \
    return detail::binary(ir::Op::op, a, b);                                                                        \
  }                                                                                                                 \
  template <Literal L>                                                                                              \
  Val operator sym(const Val& a, L b) {                                                                             \
    return detail::binary(ir::Op::op, a,                                                                            \
                          detail::literal_like(a, static_cast<double>(b), std::is_floating_point_v<L>));            \
  }                                                                                                                 \
  template <Literal L>                                                                                              \
  Val operator sym(L a, const Val& b) {                                                                             \
    return detail::binary(ir::Op::op, detail::literal_like(b, static_cast<double>(a), std::is_floating_point_v<L>), \
                          b);                                                                                       \
  }
MTILE_DSL_BINARY(+, Add)
MTILE_DSL_BINARY(-, Sub)
MTILE_DSL_BINARY(*, Mul)
MTILE_DSL_BINARY(/, Div)
MTILE_DSL_BINARY(%, Rem)
MTILE_DSL_BINARY(&, BitAnd)
MTILE_DSL_BINARY(|, BitOr)
MTILE_DSL_BINARY(^, BitXor)
MTILE_DSL_BINARY(<<, Shl)
MTILE_DSL_BINARY(>>, Shr)
MTILE_DSL_BINARY(<, Lt)
MTILE_DSL_BINARY(<=, Le)
MTILE_DSL_BINARY(>, Gt)
MTILE_DSL_BINARY(>=, Ge)
MTILE_DSL_BINARY(==, Eq)
MTILE_DSL_BINARY(!=, Ne)
#undef MTILE_DSL_BINARY
// Logical and/or on bool values (both sides are evaluated).
Val operator&&(const Val& a, const Val& b);
Val operator||(const Val& a, const Val& b);
Val operator!(const Val& a);
Val operator-(const Val& a);

// Gives `v` a name that the IR and the generated CUDA and Metal show (a C identifier); returns v.
//   Val rms = named("rms", rsqrt(ssq / n.cast<f32>() + eps));
Val named(const std::string& name, const Val& v);

// Math: float operands, computed in f32 for f16/bf16 and rounded back (docs/IR.md).
Val rsqrt(const Val& a);
Val sqrt(const Val& a);
Val exp(const Val& a);
Val exp2(const Val& a);
// exp2 whose results below 2^-126 are +0: one instruction on CUDA where exp2 takes four (softmax
// weights 2^(x - max), where a subnormal weight changes no sum).
Val exp2_ftz(const Val& a);
Val log(const Val& a);
Val tanh(const Val& a);
Val erf(const Val& a);
Val sin(const Val& a);
Val cos(const Val& a);
Val abs(const Val& a);
Val floor(const Val& a);
Val min(const Val& a, const Val& b);
Val max(const Val& a, const Val& b);
Val fma(const Val& a, const Val& b, const Val& c);
Val select(const Val& cond, const Val& a, const Val& b);
Val pow(const Val& a, const Val& b);                    // floats; a^b
Val sigmoid(const Val& a);                              // 1 / (1 + exp(-a))
Val log1p(const Val& a);                                // log(1 + a), accurate near 0
Val expm1(const Val& a);                                // exp(a) - 1, accurate near 0
Val isnan(const Val& a);                                // bool
Val isinf(const Val& a);                                // bool
Val clamp(const Val& v, const Val& lo, const Val& hi);  // min(max(v, lo), hi), any numeric type
// The same bits as another 32- or 64-bit value type: bitcast<u32>(f), bitcast<f32>(bits).
Val bitcast(const Val& v, ScalarType to);
template <class T>
Val bitcast(const Val& v) {
  return bitcast(v, T::type);
}

// Builtins (u32).
Val program_id(int axis = 0);  // index of this threadgroup in the grid
Val grid_size(int axis = 0);   // threadgroups along the axis
Val tid();                     // thread index inside the threadgroup
Val lsize();                   // threads per threadgroup
Val simd_lane();               // tid() % 32
Val simd_group();              // tid() / 32

// A u32 operand that may be written as a literal.
struct U32 {
  U32(const Val& v) : val(v) {}
  U32(uint32_t v) : val(lit(v)) {}
  U32(int v);
  Val val;
};

// Memory. A Tensor is a kernel parameter; a TgArray is threadgroup memory.
struct MemRef {
  ir::MemSpace space;
  int slot;  // parameter index or array id
  ScalarType elem;
  Val index;
  ir::CacheHint hint = ir::CacheHint::Normal;
  // Cache hints for a load or store of device memory (docs/IR.md; no effect on the values): keep()
  // for data read again soon, as a row's first pass before its second; stream() for data touched
  // once. load<f32>(x[i].keep()); store(y[i].stream(), v).
  MemRef keep() const { return hinted(ir::CacheHint::Keep); }
  MemRef stream() const { return hinted(ir::CacheHint::Stream); }
  // The same element with hint `h` (Normal: none), for code that picks the hint as a value.
  MemRef hinted(ir::CacheHint h) const {
    MemRef r = *this;
    r.hint = h;
    return r;
  }
};

class Tensor {
 public:
  MemRef operator[](U32 i) const { return {ir::MemSpace::Device, index, elem, i.val}; }
  int index = -1;
  ScalarType elem = ScalarType::f32;
  ir::Role role = ir::Role::In;
};
template <class T>
struct In : Tensor {
  static constexpr ir::Role role_v = ir::Role::In;
  using elem_t = T;
};
template <class T>
struct Out : Tensor {
  static constexpr ir::Role role_v = ir::Role::Out;
  using elem_t = T;
};
template <class T>
struct InOut : Tensor {
  static constexpr ir::Role role_v = ir::Role::InOut;
  using elem_t = T;
};
// A u32 kernel parameter known before launch: baked into the code or passed at launch.
struct Constexpr : Val {};
// A kernel parameter passed by value at each launch (LaunchOptions::scalars): Scalar<f32> eps.
template <class T>
struct Scalar : Val {
  using elem_t = T;
};

namespace detail {
MemRef strided_ref(const Tensor& t, std::initializer_list<Val> index, const Val* strides, size_t rank);
}
// A tensor with a stride per axis, for non-contiguous inputs (the q slice of a fused QKV
// projection: rows x n with row stride 3n): x(i0, i1) is element i0 * x_stride0 + i1 * x_stride1.
// The strides are constexpr parameters named <x>_stride0 ... <x>_stride{R-1}, added after the
// tensor; the spec gives its shape and strides as rules (KernelSpec::strided), and every launch
// checks that the strides are >= 1 and that every element the shape addresses is in the buffer.
template <class Tn, int R>
struct Strided : Tn {
  static_assert(R >= 1 && R <= 4, "Strided<Tensor, R>: 1 to 4 axes");
  static constexpr int rank = R;
  template <class... I>
  MemRef operator()(I... index) const {
    static_assert(sizeof...(I) == R, "a Strided<Tensor, R> takes one index per axis");
    return detail::strided_ref(*this, {U32(index).val...}, stride.data(), R);
  }
  std::array<Val, R> stride;  // the constexprs <name>_stride<k>
};

class TgArray {
 public:
  MemRef operator[](U32 i) const { return {ir::MemSpace::Threadgroup, id, elem, i.val}; }
  ir::Id id = ir::kNoId;
  ScalarType elem = ScalarType::f32;
};
// A 2-D threadgroup array, row-major: a(r, c) is element r * cols + c of `flat`.
class TgArray2D {
 public:
  MemRef operator()(U32 r, U32 c) const;
  TgArray flat;
  uint32_t rows = 0, cols = 0;
};
// Threadgroup memory of `count` elements (or rows x cols). The size is a C++ number when the
// kernel is traced: a literal or a Config value (threadgroup_array<f32>(config("tile"))); every
// launch checks the bytes against the target's. A Constexpr is known only at launch, so sizing
// with one (or any traced Val) is a trace error that says to use a Config meta-parameter.
TgArray threadgroup_array(ScalarType elem, uint32_t count, SourceLoc loc = SourceLoc::current());
TgArray threadgroup_array(ScalarType elem, const Val& count, SourceLoc loc = SourceLoc::current());
TgArray2D threadgroup_array(ScalarType elem, uint32_t rows, uint32_t cols, SourceLoc loc = SourceLoc::current());
template <class T>
TgArray threadgroup_array(uint32_t count, SourceLoc loc = SourceLoc::current()) {
  return threadgroup_array(T::type, count, loc);
}
template <class T>
TgArray threadgroup_array(const Val& count, SourceLoc loc = SourceLoc::current()) {
  return threadgroup_array(T::type, count, loc);
}
template <class T>
TgArray2D threadgroup_array(uint32_t rows, uint32_t cols, SourceLoc loc = SourceLoc::current()) {
  return threadgroup_array(T::type, rows, cols, loc);
}

Val load(const MemRef& ref, SourceLoc loc = SourceLoc::current());
// Loads and converts: load<f32>(x[i]) reads a T element and widens it to f32.
template <class T>
Val load(const MemRef& ref, SourceLoc loc = SourceLoc::current()) {
  return load(ref, loc).cast(T::type);
}
void store(const MemRef& ref, const Val& v, SourceLoc loc = SourceLoc::current());
// Masked memory: where `mask` is false the lane touches no memory (a load gives `other`), so a
// masked-off index may be out of bounds. load<T>(ref, mask, other) widens like load<T>(ref).
Val load(const MemRef& ref, const Val& mask, const Val& other, SourceLoc loc = SourceLoc::current());
template <class T>
Val load(const MemRef& ref, const Val& mask, const Val& other, SourceLoc loc = SourceLoc::current()) {
  return load(ref, mask, other.cast(value_type(ref.elem)), loc).cast(T::type);
}
void store(const MemRef& ref, const Val& v, const Val& mask, SourceLoc loc = SourceLoc::current());
// Explicit vectors: N = 2, 4 or 8 consecutive elements t[base] .. t[base + N - 1] in one access.
// `base` must be a multiple of N: each launch checks that it provably is (with its constexpr
// values) and refuses the launch, naming the access, where it is not. A target whose widest
// access is narrower gets several accesses (scalar ones on Metal) that read and write the same.
// Tensors of value types only (u32, i32, u64, i64, f32, f16, bf16).
class Vec {
 public:
  const Val& operator[](uint32_t k) const;  // lane k: t[base + k]
  uint32_t size() const { return static_cast<uint32_t>(lanes.size()); }
  std::vector<Val> lanes;
};
namespace detail {
Vec load_vector(const Tensor& t, uint32_t n, const Val& base, SourceLoc loc);
// IR LoadMatrix (docs/IR.md): `matrices` 8 x 8 matrices of ref's threadgroup array, this lane giving
// ref.index; the 2 * matrices elements this lane gets. mtile/dsl_matrix.hpp's loaders use it.
std::vector<Val> load_matrix(const MemRef& ref, uint32_t matrices, bool transposed, SourceLoc loc);
void store_vector(const Tensor& t, uint32_t n, const Val& base, const std::vector<Val>& values, SourceLoc loc);
}  // namespace detail
template <uint32_t N>
Vec load_n(const Tensor& t, U32 base, SourceLoc loc = SourceLoc::current()) {
  static_assert(N == 2 || N == 4 || N == 8, "load_n<N>: N is 2, 4 or 8");
  return detail::load_vector(t, N, base.val, loc);
}
// Loads and converts each lane, like load<T>: load_n<4, f32>(x, base).
template <uint32_t N, class T>
Vec load_n(const Tensor& t, U32 base, SourceLoc loc = SourceLoc::current()) {
  Vec v = load_n<N>(t, base, loc);
  for (Val& lane : v.lanes) lane = lane.cast(T::type);
  return v;
}
// Stores N values of the tensor's value type: store_n<4>(y, base, {a, b, c, d}).
template <uint32_t N>
void store_n(const Tensor& t, U32 base, std::initializer_list<Val> values, SourceLoc loc = SourceLoc::current()) {
  static_assert(N == 2 || N == 4 || N == 8, "store_n<N>: N is 2, 4 or 8");
  detail::store_vector(t, N, base.val, values, loc);
}
template <uint32_t N>
void store_n(const Tensor& t, U32 base, const Vec& v, SourceLoc loc = SourceLoc::current()) {
  static_assert(N == 2 || N == 4 || N == 8, "store_n<N>: N is 2, 4 or 8");
  detail::store_vector(t, N, base.val, v.lanes, loc);
}
// Atomics on device and threadgroup memory (u32 and i32; add also on f32): each returns the value
// the element held before (docs/IR.md).
Val atomic_add(const MemRef& ref, const Val& v, SourceLoc loc = SourceLoc::current());
Val atomic_min(const MemRef& ref, const Val& v, SourceLoc loc = SourceLoc::current());
Val atomic_max(const MemRef& ref, const Val& v, SourceLoc loc = SourceLoc::current());
Val atomic_exchange(const MemRef& ref, const Val& v, SourceLoc loc = SourceLoc::current());
// Writes `desired` where the element equals `expected`.
Val atomic_compare_exchange(const MemRef& ref, const Val& expected, const Val& desired,
                            SourceLoc loc = SourceLoc::current());
// Orders threadgroup memory: every thread of the threadgroup must reach it.
void barrier(SourceLoc loc = SourceLoc::current());
// Orders this thread's device memory accesses at device scope (docs/IR.md): those before it
// happen before those after it for every thread of the launch. With an atomic it hands memory
// from one threadgroup to another: stores; fence; atomic in one, the atomic that reads it; fence;
// loads in the other. Any thread may run it alone (CUDA __threadfence(); Metal 3.2).
void fence(SourceLoc loc = SourceLoc::current());
// fence at system scope: also orders this thread's accesses for peer devices that map the same
// memory (symmetric tensors of a collective kernel, KernelSpec::symmetric) and the host. With
// atomics on a symmetric tensor it hands memory between ranks as fence() does between
// threadgroups (CUDA __threadfence_system(); on Metal, one device with no peers, fence()).
void fence_system(SourceLoc loc = SourceLoc::current());

// Asynchronous copies from device to threadgroup memory (cp.async on CUDA sm_80+; a plain copy on
// Metal and the CPU engine). copy_async(tile[j], x[i], lanes) copies x[i .. i + lanes - 1] to
// tile[j .. j + lanes - 1]: `lanes` elements of 4, 8 or 16 bytes in all, both indices multiples of
// `lanes` (every launch checks that they provably are, as for load_n), same element type. The
// copy may still be in flight until this thread commits it (copy_async_commit closes a group of
// its copies) and waits (copy_async_wait(n): until at most n of its committed groups are pending);
// other threads see the data only after a barrier that follows the wait:
//   copy_async(tile[tid() * 8u], w[base + tid() * 8u], 8);
//   copy_async_commit();
//   copy_async_wait(0);
//   barrier();
void copy_async(const MemRef& dst, const MemRef& src, uint32_t lanes, SourceLoc loc = SourceLoc::current());
void copy_async_commit(SourceLoc loc = SourceLoc::current());
void copy_async_wait(uint32_t pending, SourceLoc loc = SourceLoc::current());

// Mbarriers (docs/IR.md "Mbarriers"; CUDA sm_90 and the CPU engine): barrier objects in threadgroup
// memory that count arrivals, so some threads wait for others' writes (a producer warp's copies)
// while the rest of the threadgroup runs on. Barrier i, once initialized for `count` arrivals (by
// one thread, then a barrier()), completes a phase each time `count` arrivals reach it; wait(i, p)
// returns once the phase of parity p completed (phases alternate 0, 1, 0...; before the first
// completes, wait(i, 1) returns at once). arrive_after_copies(i) arrives when this thread's
// copy_asyncs so far are complete, with no copy_async_commit or copy_async_wait needed:
//   Mbarriers full = mbarriers(stages);
//   if (producer) { copy_async(tile[...], x[...], 8); full.arrive_after_copies(s); }
//   else { full.wait(s, round & 1u); ... read tile ... }
// The CPU engine runs a threadgroup's threads in lockstep, so a wait must be satisfied by arrivals
// that come before it in program order (a producer's fill of step i before the consumers' use of
// step i in the same loop); a wait no earlier arrival can satisfy is a fault there.
struct Mbarriers {
  void init(U32 i, U32 count, SourceLoc loc = SourceLoc::current()) const;
  void arrive(U32 i, SourceLoc loc = SourceLoc::current()) const;
  void arrive_after_copies(U32 i, SourceLoc loc = SourceLoc::current()) const;
  // Arrives, and makes this phase wait also for `bytes` bytes of copy_tile transactions (below).
  void arrive_expect(U32 i, U32 bytes, SourceLoc loc = SourceLoc::current()) const;
  void wait(U32 i, U32 parity, SourceLoc loc = SourceLoc::current()) const;
  TgArray array;  // u64, one element a barrier
};
Mbarriers mbarriers(uint32_t count, SourceLoc loc = SourceLoc::current());

// Tile copies (docs/IR.md "Tile copies"; CUDA sm_90's tensor memory accelerator, TMA, and the CPU
// engine): one thread copies a whole box of a device tensor into threadgroup memory, with no
// instruction per element. The tensor is viewed as an array of rank 1-3: dims[0] elements a row,
// contiguous, and strides[i - 1] elements between consecutive indices of dim i. The box (box[0]
// elements of dim 0 by box[1] ...) at coordinates `at` (i32, dim 0 first; elements outside the
// view, negative coordinates included, arrive as zeros) lands at tile[j ..] in order, dim 0
// fastest: box[0] * element bytes a multiple of 16 and j's byte offset of 128. With swizzle 128
// each box row is 128 bytes whose 16-byte chunks are permuted as mma_async's swizzled operands
// (swizzle128_index, mtile/dsl_matrix.hpp), and j's byte offset a multiple of 1024. The copy's
// bytes (every box element, zeros too) complete on mbarrier i of `bars`: the phase that a thread's
// arrive_expect(i, bytes) announced them in completes once they land.
//   if (tid() == 0u) { full.arrive_expect(s, bytes); copy_tile(tile[base], view, {k0, row0}, full, s); }
//   full.wait(s, parity);
// On CUDA the box is a constant and the dims and strides are fixed by the launch (constants,
// constexprs, scalars, grid_size(), threadgroup_size(), and arithmetic of them): the driver
// encodes one tensor map a view at each launch. Metal has none.
struct TileView {
  Tensor tensor;
  std::vector<U32> dims, strides;
  std::vector<uint32_t> box;
  uint32_t swizzle = 0;  // 0 or 128
};
void copy_tile(const MemRef& dst, const TileView& view, const std::vector<Val>& at, const Mbarriers& bars, U32 i,
               SourceLoc loc = SourceLoc::current());

// Cross-lane operations on the 32-lane simdgroup (all its lanes must take part).
Val simd_sum(const Val& v);
Val simd_max(const Val& v);
Val simd_min(const Val& v);
Val simd_shuffle_xor(const Val& v, U32 lane_mask);
Val simd_shuffle_down(const Val& v, U32 delta);
// Threadgroup-wide reductions: every thread gets the result.
Val reduce_sum(const Val& v, SourceLoc loc = SourceLoc::current());
Val reduce_max(const Val& v, SourceLoc loc = SourceLoc::current());
Val reduce_min(const Val& v, SourceLoc loc = SourceLoc::current());

// A mutable local. Reading it (conversion to Val) reads its current value.
class Var {
 public:
  explicit Var(const Val& init, SourceLoc loc = SourceLoc::current());
  // A named local: the name shows in the IR and in the generated CUDA and Metal.
  Var(const std::string& name, const Val& init, SourceLoc loc = SourceLoc::current());
  Var(const Var&) = delete;
  Var& operator=(const Val& v);
  Var& operator=(const Var& v) { return *this = v.get(); }
  Var& operator+=(const Val& v) { return *this = get() + v; }
  Var& operator*=(const Val& v) { return *this = get() * v; }
  operator Val() const { return get(); }
  Val get() const;

 private:
  ir::Id id_;
  ScalarType type_;
  uint32_t trace_;
};

// Structured control flow. Values made inside a branch or loop body stay there.
void if_(const Val& cond, const std::function<void()>& then_body, SourceLoc loc = SourceLoc::current());
void if_(const Val& cond, const std::function<void()>& then_body, const std::function<void()>& else_body,
         SourceLoc loc = SourceLoc::current());
// for (i = start; i < end; i += step): bounds are u32 and may differ between threads. The induction
// never wraps past 2^32: a step that would pass `end` ends the loop.
void for_(U32 start, U32 end, U32 step, const std::function<void(Val)>& body, SourceLoc loc = SourceLoc::current());
// while (cond()) body(): cond is traced once and evaluated before every iteration.
void while_(const std::function<Val()>& cond, const std::function<void()>& body, SourceLoc loc = SourceLoc::current());
// Leave the innermost for_/while_; go to its next iteration; end this thread (it runs nothing more).
void break_(SourceLoc loc = SourceLoc::current());
void continue_(SourceLoc loc = SourceLoc::current());
void return_(SourceLoc loc = SourceLoc::current());

// ---------------------------------------------------------------------------------------------
// Kernel definitions.

// A kernel's meta-parameters for one launch (threads per threadgroup, elements per thread, ...),
// chosen by its spec's rules from the shape and the target, or overridden (`--config k=v`).
using Config = std::map<std::string, uint32_t>;

// The value of meta-parameter `name` in the Config this trace was started with: a C++ value, for
// trace-time decisions (how far to unroll, how many rows a threadgroup takes). Throws naming the
// kernel when the Config has no such name.
uint32_t config(const std::string& name);
// The same, or `generic` when the kernel is traced with no Config at all (code for any launch, as
// `mtile emit` without --shape and the MSL goldens make): `generic` must select a body that is
// correct for every shape. A Config that lacks the name is still an error.
uint32_t config(const std::string& name, uint32_t generic);

// Asks that `count` threadgroups of this kernel be resident on one multiprocessor at once (0: no
// request): where the launch's threadgroup size is known, the CUDA code declares it
// (__launch_bounds__(tpg, count)) and the compiler then gives a thread at most 64K / (count * tpg)
// registers, where it would otherwise take more and fit fewer threadgroups (a row held in
// registers, bench/NOTES.md). Metal and the CPU engine ignore it. A called kernel's request is not
// its caller's.
void resident_threadgroups(uint32_t count);

// Traces one variant of a kernel for an element type and a Config.
using TraceFn = std::function<ir::Function(ScalarType dtype, const Config& config)>;

// A kernel definition: its name, mode, the element types it is defined for and how to trace it.
// Immutable and cheap to copy; copies are the same definition (serial()).
class KernelDef {
 public:
  KernelDef() = default;
  // `params` are the parameters as traced for dtypes[0] (names, kinds and roles are the same for
  // every dtype); a trace that gives others is an error.
  KernelDef(std::string name, ir::Mode mode, std::vector<ScalarType> dtypes, std::vector<ir::Param> params,
            TraceFn trace);

  const std::string& name() const;
  const std::vector<ir::Param>& params() const;
  ir::Mode mode() const;
  const std::vector<ScalarType>& dtypes() const;  // the T values it is defined for
  bool has_dtype(ScalarType t) const;
  bool empty() const { return impl_ == nullptr; }
  // Runs the kernel body and returns the verified, canonical IR. Throws Error naming the kernel
  // for a dtype it lacks or a mistake in the body; a failed trace leaves nothing behind.
  ir::Function trace(ScalarType dtype, const Config& config = {}) const;
  // Unique for the process's lifetime: what caches of traces key on before they know the IR.
  uint64_t serial() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

// A kernel argument of a cross-kernel call: a value, a tensor parameter, or a u32 literal.
struct CallArg {
  CallArg(const Val& v) : value(v) {}
  CallArg(const Tensor& t) : tensor(&t) {}
  CallArg(uint32_t v) : value(lit(v)) {}
  Val value;
  const Tensor* tensor = nullptr;
};
// Calls `callee` (traced with this kernel's dtype where it is generic): its non-output
// parameters take `args` in order; its single output store becomes the returned value.
Val call(const KernelDef& callee, std::initializer_list<CallArg> args, SourceLoc loc = SourceLoc::current());

namespace detail {
struct ParamDesc {
  ir::ParamKind kind;
  ScalarType elem;
  ir::Role role;
};
template <class P>
struct is_scalar_param : std::false_type {};
template <class T>
struct is_scalar_param<Scalar<T>> : std::true_type {};

template <class P>
struct is_strided_param : std::false_type {};
template <class Tn, int R>
struct is_strided_param<Strided<Tn, R>> : std::true_type {};
// IR parameters a C++ parameter becomes: a Strided tensor adds its strides.
template <class P>
constexpr int ir_param_count() {
  if constexpr (is_strided_param<P>::value)
    return 1 + P::rank;
  else
    return 1;
}
template <class... P>
constexpr std::array<int, sizeof...(P)> first_ir_params() {
  std::array<int, sizeof...(P)> first{};
  int next = 0, i = 0;
  ((first[i++] = next, next += ir_param_count<P>()), ...);
  (void)next, (void)i;
  return first;
}

template <class P>
ParamDesc describe() {
  if constexpr (std::is_same_v<P, Constexpr>)
    return {ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In};
  else if constexpr (is_scalar_param<P>::value)
    return {ir::ParamKind::Scalar, P::elem_t::type, ir::Role::In};
  else
    return {ir::ParamKind::Tensor, P::elem_t::type, P::role_v};
}
// Starts a trace: records the parameters and returns the argument objects' raw parts.
class TraceScope {
 public:
  TraceScope(const std::string& name, ir::Mode mode, ScalarType dtype, const Config& config,
             const std::vector<std::string>& names, const std::vector<ParamDesc>& params);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  Tensor tensor_arg(int index) const;
  Constexpr constexpr_arg(int index) const;
  Val scalar_arg(int index) const;
  ir::Function finish();  // verifies and returns the traced function

 private:
  void* state_;  // the trace this scope opened
};
// The IR parameters' names and kinds, from the C++ parameters' (a Strided tensor's strides
// follow it, named <name>_stride<k>).
template <class P>
void describe_into(const std::string& name, std::vector<std::string>& names, std::vector<ParamDesc>& descs) {
  names.push_back(name);
  descs.push_back(describe<P>());
  if constexpr (is_strided_param<P>::value)
    for (int k = 0; k < P::rank; ++k) {
      names.push_back(name + "_stride" + std::to_string(k));
      descs.push_back({ir::ParamKind::Constexpr, ScalarType::u32, ir::Role::In});
    }
}
template <class... P>
std::vector<ir::Param> describe_params(const std::vector<std::string>& names, ScalarType dtype) {
  std::vector<std::string> n;
  std::vector<ParamDesc> d;
  size_t i = 0;
  ((describe_into<P>(i < names.size() ? names[i] : "", n, d), ++i), ...);
  std::vector<ir::Param> out;
  for (size_t k = 0; k < d.size(); ++k) out.push_back({n[k], d[k].kind, d[k].elem, d[k].role});
  (void)dtype;
  return out;
}
template <class P>
P make_arg(const TraceScope& scope, int index) {
  if constexpr (is_strided_param<P>::value) {
    P p;
    static_cast<Tensor&>(p) = scope.tensor_arg(index);
    for (int k = 0; k < P::rank; ++k) p.stride[k] = scope.constexpr_arg(index + 1 + k);
    return p;
  } else if constexpr (std::is_same_v<P, Constexpr>) {
    return scope.constexpr_arg(index);
  } else if constexpr (is_scalar_param<P>::value) {
    P p;
    static_cast<Val&>(p) = scope.scalar_arg(index);
    return p;
  } else {
    P p;
    static_cast<Tensor&>(p) = scope.tensor_arg(index);
    return p;
  }
}
template <class... P, size_t... I>
ir::Function trace_fn(const std::string& name, ir::Mode mode, ScalarType dtype, const Config& config,
                      const std::vector<std::string>& names, void (*fn)(P...), std::index_sequence<I...>) {
  std::vector<std::string> ir_names;
  std::vector<ParamDesc> descs;
  if (names.size() == sizeof...(P)) {
    size_t i = 0;
    (describe_into<P>(names[i++], ir_names, descs), ...);
  } else {  // TraceScope reports the mismatch
    ir_names = names;
    descs = {describe<P>()...};
  }
  TraceScope scope(name, mode, dtype, config, ir_names, descs);
  constexpr std::array<int, sizeof...(P)> first = first_ir_params<P...>();
  (void)first;
  fn(make_arg<P>(scope, first[I])...);
  return scope.finish();
}
}  // namespace detail

// A kernel with one variant (its tensors' types are fixed), e.g. mt_rms_inv_scalar on f32.
template <class... P>
KernelDef define_kernel(std::string name, ir::Mode mode, std::vector<std::string> names, void (*fn)(P...),
                        ScalarType dtype = ScalarType::f32) {
  return KernelDef(name, mode, {dtype}, detail::describe_params<P...>(names, dtype),
                   [=](ScalarType, const Config& config) {
                     return detail::trace_fn(name, mode, dtype, config, names, fn, std::index_sequence_for<P...>{});
                   });
}

// A kernel generic over T, from its f32, f16 and bf16 instantiations (see MTILE_FLOAT_VARIANTS).
template <class... P32, class... P16, class... PB16>
KernelDef define_generic_kernel(std::string name, ir::Mode mode, std::vector<std::string> names, void (*f32fn)(P32...),
                                void (*f16fn)(P16...), void (*bf16fn)(PB16...)) {
  return KernelDef(name, mode, {ScalarType::f32, ScalarType::f16, ScalarType::bf16},
                   detail::describe_params<P32...>(names, ScalarType::f32), [=](ScalarType t, const Config& c) {
                     switch (t) {
                       case ScalarType::f16:
                         return detail::trace_fn(name, mode, t, c, names, f16fn, std::index_sequence_for<P16...>{});
                       case ScalarType::bf16:
                         return detail::trace_fn(name, mode, t, c, names, bf16fn, std::index_sequence_for<PB16...>{});
                       default:
                         return detail::trace_fn(name, mode, t, c, names, f32fn, std::index_sequence_for<P32...>{});
                     }
                   });
}
#define MTILE_FLOAT_VARIANTS(fn) &fn<::mtile::dsl::f32>, &fn<::mtile::dsl::f16>, &fn<::mtile::dsl::bf16>

// A kernel generic over the 16-bit float types only (tensor-core kernels: Mma multiplies bf16 or
// f16), from its bf16 and f16 instantiations (see MTILE_HALF_VARIANTS); bf16 is its first dtype.
template <class... PB16, class... P16>
KernelDef define_half_kernel(std::string name, ir::Mode mode, std::vector<std::string> names, void (*bf16fn)(PB16...),
                             void (*f16fn)(P16...)) {
  return KernelDef(name, mode, {ScalarType::bf16, ScalarType::f16},
                   detail::describe_params<PB16...>(names, ScalarType::bf16), [=](ScalarType t, const Config& c) {
                     if (t == ScalarType::f16)
                       return detail::trace_fn(name, mode, t, c, names, f16fn, std::index_sequence_for<P16...>{});
                     return detail::trace_fn(name, mode, t, c, names, bf16fn, std::index_sequence_for<PB16...>{});
                   });
}
#define MTILE_HALF_VARIANTS(fn) &fn<::mtile::dsl::bf16>, &fn<::mtile::dsl::f16>

// Kernels generic over two types: an input type (the kernel's dtype, as for every kernel) and an
// output type chosen by a Config meta-parameter whose value is a type code (type_code(t);
// `--config out_dtype=bf16` on the command line). One variant per (input, output) pair:
//   k.def = define_two_type_kernel("convert", mode, {"x", "y", "n"}, "out_dtype",
//                                  MTILE_FLOAT_TYPE_PAIRS(convert));
//   k.config = {{"out_dtype", type_code(ScalarType::f32)}};
// Without the meta-parameter in the Config (a trace outside a launch), the first pair listed for
// the input type is traced.
struct TypePair {
  ScalarType in, out;
  std::function<std::vector<ir::Param>(const std::vector<std::string>& names)> params;
  std::function<ir::Function(const std::string& name, ir::Mode mode, const std::vector<std::string>& names,
                             const Config& config)>
      trace;
};
template <class TIn, class TOut, class... P>
TypePair type_pair(void (*fn)(P...)) {
  return {TIn::type, TOut::type,
          [](const std::vector<std::string>& names) { return detail::describe_params<P...>(names, TIn::type); },
          [fn](const std::string& name, ir::Mode mode, const std::vector<std::string>& names, const Config& c) {
            return detail::trace_fn(name, mode, TIn::type, c, names, fn, std::index_sequence_for<P...>{});
          }};
}
KernelDef define_two_type_kernel(std::string name, ir::Mode mode, std::vector<std::string> names,
                                 std::string out_config, std::vector<TypePair> pairs);
// A ScalarType as a Config value, and back (a trace error for a code that is no type).
uint32_t type_code(ScalarType t);
ScalarType config_type(const std::string& name);
#define MTILE_FLOAT_TYPE_PAIRS(fn)                                                                                    \
  {                                                                                                                   \
    ::mtile::dsl::type_pair<::mtile::dsl::f32, ::mtile::dsl::f32>(&fn<::mtile::dsl::f32, ::mtile::dsl::f32>),         \
        ::mtile::dsl::type_pair<::mtile::dsl::f32, ::mtile::dsl::f16>(&fn<::mtile::dsl::f32, ::mtile::dsl::f16>),     \
        ::mtile::dsl::type_pair<::mtile::dsl::f32, ::mtile::dsl::bf16>(&fn<::mtile::dsl::f32, ::mtile::dsl::bf16>),   \
        ::mtile::dsl::type_pair<::mtile::dsl::f16, ::mtile::dsl::f16>(&fn<::mtile::dsl::f16, ::mtile::dsl::f16>),     \
        ::mtile::dsl::type_pair<::mtile::dsl::f16, ::mtile::dsl::f32>(&fn<::mtile::dsl::f16, ::mtile::dsl::f32>),     \
        ::mtile::dsl::type_pair<::mtile::dsl::f16, ::mtile::dsl::bf16>(&fn<::mtile::dsl::f16, ::mtile::dsl::bf16>),   \
        ::mtile::dsl::type_pair<::mtile::dsl::bf16, ::mtile::dsl::bf16>(&fn<::mtile::dsl::bf16, ::mtile::dsl::bf16>), \
        ::mtile::dsl::type_pair<::mtile::dsl::bf16, ::mtile::dsl::f32>(&fn<::mtile::dsl::bf16, ::mtile::dsl::f32>),   \
        ::mtile::dsl::type_pair<::mtile::dsl::bf16, ::mtile::dsl::f16>(&fn<::mtile::dsl::bf16, ::mtile::dsl::f16>)    \
  }

}  // namespace mtile::dsl
