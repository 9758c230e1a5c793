// Rule expressions: each one computes and prints itself; out-of-range arithmetic is an error.
#include "mtile/rule.hpp"

#include <gtest/gtest.h>

#include "mtile/types.hpp"
#include "test_util.hpp"

namespace mtile::rule {
namespace {

using mtile::testing::contains;

TEST(Rule, EvaluatesAndPrintsTheSameExpression) {
  Expr n = var("n"), tpg = var("tpg");
  Bindings b = {{"n", 4096}, {"tpg", 1024}};
  Expr ok = n % 128 == 0;
  EXPECT_EQ(ok.text(), "n % 128 == 0");
  EXPECT_EQ(ok.eval(b), 1u);
  EXPECT_EQ((n % 128 == 0).eval({{"n", 4000}}), 0u);
  EXPECT_EQ((tpg * 4 == n).text(), "tpg * 4 == n");
  EXPECT_EQ((n / 4).eval(b), 1024u);
  Expr threads = clamp(round_up(ceil_div(n, 16), var("simd_width")), 4 * var("simd_width"), var("max_tpg"));
  EXPECT_EQ(threads.text(), "clamp(round_up(ceil_div(n, 16), simd_width), 4 * simd_width, max_tpg)");
  Bindings t = {{"simd_width", 32}, {"max_tpg", 1024}};
  for (auto [nv, want] :
       std::vector<std::pair<uint64_t, uint64_t>>{{1, 128}, {4096, 256}, {5120, 320}, {65536, 1024}}) {
    t["n"] = nv;
    EXPECT_EQ(threads.eval(t), want) << nv;
  }
  EXPECT_EQ(threads.names(), (std::vector<std::string>{"n", "simd_width", "max_tpg"}));
}

TEST(Rule, PrintsParenthesesWhereCNeedsThem) {
  Expr a = var("a"), b = var("b"), c = var("c");
  EXPECT_EQ(((a + b) * c).text(), "(a + b) * c");
  EXPECT_EQ((a + b * c).text(), "a + b * c");
  EXPECT_EQ((a - (b - c)).text(), "a - (b - c)");
  EXPECT_EQ(((a - b) - c).text(), "a - b - c");
  EXPECT_EQ((a / (b * c)).text(), "a / (b * c)");
  EXPECT_EQ(((a < b && b <= c) || !(a == c)).text(), "(a < b && b <= c) || !(a == c)");
  Bindings v = {{"a", 10}, {"b", 3}, {"c", 2}};
  EXPECT_EQ((a - (b - c)).eval(v), 9u);
  EXPECT_EQ(((a - b) - c).eval(v), 5u);
  EXPECT_EQ((a / (b * c)).eval(v), 1u);
  EXPECT_EQ(select(a > b, a, b).eval(v), 10u);
  EXPECT_EQ(pow2_ceil(a).eval(v), 16u);
  EXPECT_EQ(min(a, b).eval(v) + max(a, b).eval(v), 13u);
}

TEST(Rule, OutOfRangeArithmeticIsAnErrorNamingTheRule) {
  Expr n = var("n");
  auto error = [](const Expr& e, const Bindings& b) {
    try {
      e.eval(b);
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(contains(error(n - 1, {{"n", 0}}), "rule 'n - 1': 0 - 1 is negative"));
  EXPECT_TRUE(contains(error(n / var("d"), {{"n", 4}, {"d", 0}}), "division by zero"));
  EXPECT_TRUE(contains(error(ceil_div(n, 0), {{"n", 4}}), "ceil_div(4, 0): division by zero"));
  EXPECT_TRUE(contains(error(n * n, {{"n", uint64_t{1} << 40}}), "overflows 64 bits"));
  EXPECT_TRUE(contains(error(n + 1, {}), "'n' has no value here"));
  EXPECT_THROW(Expr(-1), Error);
}

}  // namespace
}  // namespace mtile::rule
