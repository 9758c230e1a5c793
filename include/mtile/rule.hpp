// Rule expressions: the integer arithmetic a kernel's contract is written in. One expression both
// computes (eval) and prints itself (text), so a dispatch rule or a precondition is written once:
//
//   rule::Expr n = rule::var("n"), tpg = rule::var("tpg");
//   spec.dispatch.tpg = n / 4;                // prints "n / 4"
//   spec.preconditions = {n % 128 == 0};      // fails as "n % 128 == 0 (n = 4000)"
//
// Values are unsigned 64-bit. Arithmetic that leaves that range (a subtraction below zero, an
// overflow, a division by zero) is an error naming the expression, never a wrapped value.
// Comparisons and logic give 0 or 1.
#pragma once
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mtile::rule {

// The values an expression reads, by name (shape dims, config, geometry, target facts).
using Bindings = std::map<std::string, uint64_t>;

class Expr {
 public:
  Expr() = default;  // empty: no rule
  template <std::integral I>
  Expr(I value) : Expr(literal(static_cast<int64_t>(value))) {}  // NOLINT: literals mix with exprs

  bool empty() const { return node_ == nullptr; }
  // Throws Error naming the expression on a missing name or an out-of-range operation.
  uint64_t eval(const Bindings& b) const;
  std::string text() const;
  // The names it reads, each once, in the order they first appear.
  std::vector<std::string> names() const;

  struct Node;
  explicit Expr(std::shared_ptr<const Node> n) : node_(std::move(n)) {}
  const std::shared_ptr<const Node>& node() const { return node_; }

 private:
  static Expr literal(int64_t v);
  std::shared_ptr<const Node> node_;
};

// A named value.
Expr var(const std::string& name);

Expr operator+(const Expr& a, const Expr& b);
Expr operator-(const Expr& a, const Expr& b);
Expr operator*(const Expr& a, const Expr& b);
Expr operator/(const Expr& a, const Expr& b);  // rounds down
Expr operator%(const Expr& a, const Expr& b);
Expr operator<(const Expr& a, const Expr& b);
Expr operator<=(const Expr& a, const Expr& b);
Expr operator>(const Expr& a, const Expr& b);
Expr operator>=(const Expr& a, const Expr& b);
Expr operator==(const Expr& a, const Expr& b);
Expr operator!=(const Expr& a, const Expr& b);
Expr operator&&(const Expr& a, const Expr& b);
Expr operator||(const Expr& a, const Expr& b);
Expr operator!(const Expr& a);
Expr min(const Expr& a, const Expr& b);
Expr max(const Expr& a, const Expr& b);
Expr ceil_div(const Expr& a, const Expr& b);                  // (a + b - 1) / b
Expr round_up(const Expr& a, const Expr& b);                  // ceil_div(a, b) * b
Expr clamp(const Expr& v, const Expr& lo, const Expr& hi);    // min(max(v, lo), hi)
Expr select(const Expr& cond, const Expr& a, const Expr& b);  // cond != 0 ? a : b
Expr pow2_ceil(const Expr& a);                                // the least power of two >= a (1 for 0)

}  // namespace mtile::rule
