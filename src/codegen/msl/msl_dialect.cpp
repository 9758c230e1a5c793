// Metal Shading Language spellings for the shared printer, and emit_msl.
//
// Buffer index i is IR parameter i. A constexpr the code still reads (ConstexprRef) is passed as
// `constant uint& n [[buffer(i)]]`; one a pass has baked in is left out of the signature unless
// MslOptions::constexprs_as_buffers asks for it, and its index stays unused, so the launcher may
// bind every constexpr at its index either way (Metal ignores a binding nothing reads).
// Transcendentals and float division use metal::precise so the math mode does not change them.
// A kernel with a fence needs Metal 3.2: its fence is atomic_thread_fence at device scope, and the
// tensors it writes are declared coherent(device), without which another threadgroup's reads
// after the fence need not see its stores.
#include <fmt/format.h>

#include "codegen/c_printer.hpp"
#include "codegen/codegen.hpp"
#include "codegen/msl/msl_preamble.hpp"

namespace mtile::codegen {
namespace {

using ir::Op;

// The builtins as kernel arguments. Position, size and count share uint3, as Metal requires of
// the vector-typed attributes; the thread, lane and simdgroup indices are scalars.
struct BuiltinArg {
  Op op;
  const char* decl;
};
constexpr BuiltinArg kBuiltins[] = {
    {Op::ProgramId, "uint3 mt_tg_pos [[threadgroup_position_in_grid]]"},
    {Op::ThreadId, "uint mt_tid [[thread_index_in_threadgroup]]"},
    {Op::ThreadgroupSize, "uint3 mt_tg_size [[threads_per_threadgroup]]"},
    {Op::GridSize, "uint3 mt_grid_size [[threadgroups_per_grid]]"},
    {Op::SimdLane, "uint mt_simd_lane [[thread_index_in_simdgroup]]"},
    {Op::SimdGroup, "uint mt_simd_group [[simdgroup_index_in_threadgroup]]"},
};

bool has_fence(const ir::Function& f) {
  bool found = false;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) { found |= in.op == Op::Fence; });
  return found;
}

Dialect make_msl_dialect(const MslOptions& opts, bool coherent) {
  bool v31 = opts.version != MslOptions::Version::V3_0;  // bfloat
  Dialect d = {
      .value_type = {"uint", "int", "float", "float", "float", "bool", "ulong", "long", "uint", "int", "uint", "int",
                     "float", "float"},
      .storage_type = {"uint", "int", "float", "half", v31 ? "bfloat" : "ushort", "bool", "ulong", "long", "uchar",
                       "char", "ushort", "short", "uchar", "uchar"},
      .load = {"{0}", "{0}", "{0}", "float({0})", v31 ? "float({0})" : "mt_bf16_to_f32({0})", "{0}", "{0}", "{0}",
               "uint({0})", "int({0})", "uint({0})", "int({0})", "mt_f8e4m3_to_f32({0})", "mt_f8e5m2_to_f32({0})"},
      .store = {"{0}", "{0}", "{0}", "half({0})", v31 ? "bfloat({0})" : "mt_f32_to_bf16({0})", "{0}", "{0}", "{0}",
                "uchar({0})", "char({0})", "ushort({0})", "short({0})", "mt_f32_to_f8e4m3({0})",
                "mt_f32_to_f8e5m2({0})"},
      .round = {"{0}", "{0}", "{0}", "mt_round_f16({0})", "mt_round_bf16({0})", "{0}", "{0}", "{0}", "{0}", "{0}",
                "{0}", "{0}", "{0}", "{0}"},
      .ops =
          {
              {Op::ProgramId, "mt_tg_pos.{0}"},
              {Op::GridSize, "mt_grid_size.{0}"},
              {Op::ThreadId, "mt_tid"},
              {Op::ThreadgroupSize, "mt_tg_size.x"},
              {Op::SimdLane, "mt_simd_lane"},
              {Op::SimdGroup, "mt_simd_group"},
              {Op::Barrier, "threadgroup_barrier(mem_flags::mem_threadgroup)"},
              {Op::Fence, "atomic_thread_fence(mem_flags::mem_device, memory_order_seq_cst, thread_scope_device)"},
              {Op::Abs, "fabs({0})"},
              {Op::Floor, "floor({0})"},
              {Op::Sqrt, "precise::sqrt({0})"},
              {Op::Rsqrt, "precise::rsqrt({0})"},
              {Op::Exp, "precise::exp({0})"},
              {Op::Exp2, "precise::exp2({0})"},
              {Op::Exp2Ftz, "mt_exp2_ftz({0})"},
              {Op::Log, "precise::log({0})"},
              {Op::Tanh, "precise::tanh({0})"},
              {Op::Erf, "mt_erf({0})"},
              {Op::Sin, "precise::sin({0})"},
              {Op::Cos, "precise::cos({0})"},
              {Op::Log1p, "mt_log1p({0})"},
              {Op::Expm1, "mt_expm1({0})"},
              {Op::Sigmoid, "precise::divide(1.0f, 1.0f + precise::exp(-{0}))"},
              {Op::IsNan, "isnan({0})"},
              {Op::IsInf, "isinf({0})"},
              {Op::Pow, "precise::pow({0}, {1})"},
              {Op::Add, "{0} + {1}"},
              {Op::Sub, "{0} - {1}"},
              {Op::Mul, "{0} * {1}"},
              {Op::Div, "precise::divide({0}, {1})"},
              {Op::Rem, "precise::fmod({0}, {1})"},
              {Op::Min, "precise::fmin({0}, {1})"},
              {Op::Max, "precise::fmax({0}, {1})"},
              {Op::Fma, "fma({0}, {1}, {2})"},
              // Constant lane operands only (Metal wants them uniform); lanes past the end keep
              // their own value.
              {Op::ShuffleXor, "simd_shuffle_xor({0}, ushort({1}))"},
              {Op::ShuffleDown, "simd_shuffle_down({0}, ushort({1}))"},
              // Every value is a float in registers, so one helper serves bf16 and f16 (its 8x8
              // simdgroup matrices are float: the products of 16-bit floats are exact in f32).
              {Op::Mma, "mt_mma_m16n8k16({1}, {2})"},
              // No ldmatrix: each lane reads its own elements at the row indices other lanes give.
              {Op::LoadMatrix, "mt_load_matrix_x{0}{1}({2}, {3}, {4})"},
              // No asynchronous copy: a plain copy, complete when it is issued (docs/IR.md).
              {Op::CopyAsync, ""},
              {Op::CopyAsyncCommit, ""},
              {Op::CopyAsyncWait, ""},
          },
      .mma_async = {},  // no warpgroup MMA: the printer refuses mma_async
      .fence_operand = "",
      .mma_type = "float4",
      .mma_pack = "",  // its Mma takes the 16 values
      .storage_from_bits = "as_type<{1}>(ushort({0}))",
      .system_fence = "",  // one device, no peers: the device fence (docs/IR.md)
      .f32_to_u32 = "mt_f32_to_u32({0})",
      .f32_to_i32 = "mt_f32_to_i32({0})",
      .f32_to_u64 = "mt_f32_to_u64({0})",
      .f32_to_i64 = "mt_f32_to_i64({0})",
      .atomic = {{ir::AtomicOp::Add, "atomic_fetch_add_explicit({0}, {1}, memory_order_relaxed)"},
                 {ir::AtomicOp::Min, "atomic_fetch_min_explicit({0}, {1}, memory_order_relaxed)"},
                 {ir::AtomicOp::Max, "atomic_fetch_max_explicit({0}, {1}, memory_order_relaxed)"},
                 {ir::AtomicOp::Exchange, "atomic_exchange_explicit({0}, {1}, memory_order_relaxed)"},
                 {ir::AtomicOp::CompareExchange, "mt_atomic_cas({0}, {2}, {1})"}},
      .atomic_pointer = "({0} atomic_{1}*)({2})",
      .bitcast = "as_type<{1}>({0})",
      .float_from_bits = "as_type<float>({0})",
      .shuffle_lane = "simd_shuffle({0}, ushort({1}))",
      .simd_reduce = "simd_{1}({0})",
      .simd_reduce_rounds_each_step = false,
      .tg_array = "threadgroup {0} {1}[{2}];",
      .static_tg_bytes = 0,  // every array static: a family's limit is what the contract checks
      .tg_dynamic_block = "",
      .tg_dynamic_array = "",
      // No vector accesses: Metal targets have max_vector_bytes 0, so the pipeline forms none
      // (Metal's compiler merges adjacent scalar accesses itself).
      .vector_stem = {},
      .vector_load = "",
      .vector_store = "",
      .vector_make = "",
      .hinted_load = {},  // Metal has no cache-priority control: hinted accesses print plain
      .hinted_store = {},
      .head = nullptr,
      .entry_statement = "",  // Metal launches have no programmatic dependence to wait for
  };
  TypeTable storage = d.storage_type, values = d.value_type;
  d.head = [storage, values, opts, coherent](const ir::Function& f, const KernelUses& u) {
    std::string s =
        fmt::format("// {}<{}> ({}): Metal Shading Language {} generated by mtile from the kernel's IR. Do not edit.\n",
                    f.name, type_name(f.dtype), ir::mode_name(f.mode), msl_version_name(opts.version));
    s += fmt::format("// Parameters: {}; buffer(i) is parameter i.\n", param_summary(f));
    std::vector<std::string> args;
    for (size_t i = 0; i < f.params.size(); ++i) {
      const ir::Param& p = f.params[i];
      if (p.kind == ir::ParamKind::Tensor) {
        bool in = p.role == ir::Role::In;
        args.push_back(fmt::format("{}device {}{}* {} [[buffer({})]]", coherent && !in ? "coherent(device) " : "",
                                   in ? "const " : "", at(storage, p.elem), u.param_names[i], i));
      } else if (p.kind == ir::ParamKind::Scalar) {
        args.push_back(fmt::format("constant {}& {} [[buffer({})]]", at(values, p.elem), u.param_names[i], i));
      } else if (u.constexpr_read[i] || opts.constexprs_as_buffers) {
        args.push_back(fmt::format("constant uint& {} [[buffer({})]]", u.param_names[i], i));
      } else {
        s += fmt::format("// {} is baked into this code; buffer({}) is not read.\n", p.name, i);
      }
    }
    for (const BuiltinArg& b : kBuiltins)
      if (u.builtins.count(b.op)) args.push_back(b.decl);
    bool mma = u.ops.count(Op::Mma) > 0;
    s += mma ? "#include <metal_stdlib>\n#include <metal_simdgroup_matrix>\nusing namespace metal;\n\n"
             : "#include <metal_stdlib>\nusing namespace metal;\n\n";
    s += kMslPreamble;
    if (mma) s += kMslMmaPreamble;
    if (u.ops.count(Op::LoadMatrix)) s += kMslLoadMatrixPreamble;
    s += fmt::format("\nkernel void {}(", entry_name(f));
    for (size_t i = 0; i < args.size(); ++i) s += fmt::format("{}\n    {}", i ? "," : "", args[i]);
    return s + ")";
  };
  return d;
}

}  // namespace

std::string emit_msl(const ir::Function& f, const MslOptions& opts) {
  bool fence = has_fence(f);
  if (fence && opts.version < MslOptions::Version::V3_2)
    throw Error(
        fmt::format("kernel {}<{}>: its device-scope fence needs Metal 3.2 (atomic_thread_fence with "
                    "thread_scope_device, coherent(device) buffers), not {}: emit it with --metal-version 3.2",
                    f.name, type_name(f.dtype), msl_version_name(opts.version)));
  return print_kernel(f, make_msl_dialect(opts, fence));
}

MslOptions::Version msl_version_needed(const ir::Function& f) {
  return has_fence(f) ? MslOptions::Version::V3_2 : MslOptions::Version::V3_0;
}

const char* msl_version_name(MslOptions::Version v) {
  switch (v) {
    case MslOptions::Version::V3_0: return "3.0";
    case MslOptions::Version::V3_1: return "3.1";
    case MslOptions::Version::V3_2: return "3.2";
  }
  return "?";
}

}  // namespace mtile::codegen
