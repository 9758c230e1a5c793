// Rows of huge values: where the f32 sum of squares overflows, the norm kernels rescale the row
// and match the float64 reference (kernels/norm/huge_rows.hpp), on every kernel that takes a row,
// for f32 and bf16 (f16 can't hold such values). mt_rms_inv_scalar, which is given partial sums,
// returns 0 when their f32 total overflows, as documented.
#include <fmt/format.h>

#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;

namespace {

// The kernel with its row tensors drawn from [lo, hi] (both signs when lo < 0).
Kernel with_huge_rows(const Kernel& k, double lo, double hi) {
  KernelSpec s = k.spec();
  for (const char* t : {"x", "residual"})
    if (s.sizes.count(t)) s.inits[t] = Init::uniform(lo, hi);
  return make_kernel(std::move(s));
}

std::vector<std::string> row_kernels() {
  std::vector<std::string> names;
  for (const Kernel& k : kernels())
    if (k->family == "norm" && k->sizes.count("x")) names.push_back(k.name());
  return names;
}

}  // namespace

TEST(NormOverflow, HugeRowsMatchTheFloat64Reference) {
  auto cpu = make_backend("cpu:sanitize");
  ASSERT_GE(row_kernels().size(), 6u);
  // Squares of 1e19.. overflow f32 (3.4e38); 1.5e38 is near its largest finite value (the sum of
  // add_rms_norm's two inputs stays finite).
  for (auto [lo, hi] : {std::pair{1e19, 1e21}, std::pair{-1.5e38, 1.5e38}}) {
    for (const std::string& name : row_kernels()) {
      Kernel k = with_huge_rows(find_kernel(name), lo, hi);
      for (ScalarType t : {ScalarType::f32, ScalarType::bf16}) {
        for (const Shape& s : k->test_shapes) {
          CheckResult r = run_and_check(*cpu, k, t, s);
          EXPECT_TRUE(r.passed) << fmt::format("x in [{}, {}]: ", lo, hi) << r.summary();
        }
      }
    }
  }
}

TEST(NormOverflow, TheRescueIsTracedForF32AndBf16Only) {
  // The rescue takes the row's maximum (of a threadgroup, or of a simdgroup for one head): one
  // more than the kernel's own maxima (add_rms_norm_quant_fp8 has one); f16 rows can't overflow.
  for (const std::string& name : row_kernels()) {
    Kernel k = find_kernel(name);
    const Config config = resolve(k.spec(), k->example_shape, Target::cpu()).config;
    auto maxima = [&](ScalarType t) {
      int count = 0;
      ir::for_each_inst(k->def.trace(t, config).body,
                        [&](const ir::Inst& in) { count += in.op == ir::Op::TgReduceMax || in.op == ir::Op::SimdMax; });
      return count;
    };
    int without = maxima(ScalarType::f16);
    for (ScalarType t : {ScalarType::f32, ScalarType::bf16})
      EXPECT_EQ(maxima(t), without + 1) << name << "<" << type_name(t) << ">";
  }
}

TEST(NormOverflow, RmsInvScalarOfPartialSumsThatOverflowIsZero) {
  // It is given sums of squares, not the row: it can't rescale them (docs/writing-kernels.md).
  KernelSpec s = find_kernel("mt_rms_inv_scalar").spec();
  s.inits["partial_ssq"] = Init::constant(3e38);
  Kernel k = make_kernel(std::move(s));
  auto cpu = make_backend("cpu");
  CheckOptions o;
  o.keep_outputs = true;
  CheckResult r = run_and_check(*cpu, k, ScalarType::f32, {{"rows", 2}, {"threads", 32}, {"n", 128}}, o);
  ASSERT_EQ(r.output_values.size(), 1u);
  for (double v : r.output_values[0]) EXPECT_EQ(v, 0.0);
  EXPECT_FALSE(r.passed) << "the float64 reference gives sqrt(128 / (32 * 3e38)), not 0";
}
