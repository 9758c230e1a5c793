// A kernel that uses every IR operation the code generators print, for the unit and compile tests.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "mtile/dsl.hpp"
#include "mtile/registry.hpp"
#include "passes/pipeline.hpp"

namespace mtile::codegen_test {

using namespace dsl;

template <class T>
void all_ops(In<T> x, In<i32> k, Out<T> y, InOut<u32> z, Constexpr n) {
  Val gid = program_id(0) * lsize() + tid();
  Val extra = program_id(1) + program_id(2) + grid_size(0) + grid_size(1) + grid_size(2) + simd_group();
  TgArray tg_t = threadgroup_array<T>(64);
  TgArray tg_u = threadgroup_array<u32>(64);
  Val v = load(x[gid % n]);
  Val f = v.cast<f32>();
  Var acc(lit(0.0f));
  for_(0u, n, 32u, [&](Val i) { acc += load<f32>(x[i]); });
  // Math on T (rounded to T after each operation where T is f16 or bf16).
  Val m = rsqrt(abs(v) + 1.0f) + sqrt(abs(v)) + exp(v) + exp2(v) + exp2_ftz(v) + log(abs(v) + 2.0f) + tanh(v) + erf(v) +
          sin(v) + cos(v) + floor(v) + min(v, -v) + max(v, v * 0.5f) + fma(v, v, v) + v / (v + 3.0f) + v % 1.5f;
  // Integers: u32 wraps, i32 through u32, shifts mod 32.
  Val s = load(k[gid]);
  Val ints = (-s + abs(s) * s - (s << 35) + (s >> (s & 7)) + s / 3 + s % 7 + s / (s | 3) + s % (s | 3) +
              min(s, lit(2)) + max(s, lit(-2)) + (!s ^ (s | 1) & 12))
                 .cast<u32>();
  Val u = gid / (n + 1u) + (gid << (gid & 3u)) + (gid >> 1u) + min(gid, n) + max(gid, lit(4u)) + ints + extra;
  // bool logic and casts between every pair the IR allows.
  Val b = ((gid < n) && !(gid == 3u)) || ((gid >= 2u) ^ (gid != 5u)) || (gid <= 1u && gid > 0u);
  Val c = f.cast<u32>() + f.cast<i32>().cast<u32>() + u.cast<i32>().cast<u32>() + b.cast<u32>() +
          b.cast<i32>().cast<u32>() + s.cast<f32>().cast<u32>() + u.cast(ScalarType::boolean).cast<u32>() +
          f.cast(ScalarType::boolean).cast<u32>() + (min(b, gid > 9u) || max(b, gid > 7u)).cast<u32>();
  Val h = v.cast<f16>().cast<bf16>().cast<f32>() + u.cast<bf16>().cast<f32>() + s.cast<f16>().cast<f32>() +
          lit(ScalarType::f32, 1e30 * 1e30) + lit(-2.5f);
  // Cross-lane operations, with constant and per-lane lane operands.
  Val r = simd_sum(v) + simd_max(v) + simd_min(v) + simd_shuffle_xor(v, 16) + simd_shuffle_down(v, 1) +
          simd_shuffle_xor(v, gid) + simd_shuffle_down(v, gid & 7u) + simd_shuffle_down(v, 40);
  Val lanes = simd_sum(gid) + simd_max(c) + simd_min(c) + simd_sum(s).cast<u32>() + simd_lane() +
              simd_shuffle_xor(gid < n, 1).cast<u32>();
  store(tg_t[tid()], m + r);
  store(tg_u[tid()], u + c + lanes);
  barrier();
  if_(
      b, [&] { store(y[gid], select(gid < n, load(tg_t[tid() ^ 1u]), v) + cast<T>(acc.get() + h)); },
      [&] { store(z[gid], load(tg_u[63u - tid() % 64u])); });
}

inline const KernelDef& all_ops_kernel() {
  static const KernelDef k = define_generic_kernel("codegen_all_ops", ir::Mode::Reduction, {"x", "k", "y", "z", "n"},
                                                   MTILE_FLOAT_VARIANTS(all_ops));
  return k;
}

// One kernel variant for the compile checks: a test name and its lowered IR.
struct Variant {
  std::string name;
  std::function<ir::Function()> lower;
};
inline void PrintTo(const Variant& v, std::ostream* os) {
  *os << v.name;
}

// Every registered kernel and dtype lowered for `target` as the runtime does it (constexprs
// passed, and baked with the values of the kernel's example shape, Config as the rules choose it),
// then all_ops for each float type.
inline std::vector<Variant> variants(const Target& target) {
  std::vector<Variant> out;
  for (const Kernel& k : kernels()) {
    for (ScalarType t : k->def.dtypes()) {
      std::string name = k.name() + "_" + type_name(t);
      Resolved r = resolve(k.spec(), k->example_shape, target);
      out.push_back({name, [k, t, r, target] { return passes::run_pipeline(k->def.trace(t, r.config), target); }});
      if (r.constexprs.empty()) continue;
      out.push_back({name + "_baked", [k, t, r, target] {
                       passes::PipelineOptions o;
                       o.bake = r.constexprs;
                       return passes::run_pipeline(k->def.trace(t, r.config), target, o);
                     }});
    }
  }
  for (ScalarType t : all_ops_kernel().dtypes())
    out.push_back({std::string("all_ops_") + type_name(t), [t] { return all_ops_kernel().trace(t); }});
  return out;
}

}  // namespace mtile::codegen_test
