// Rule expressions: a small tree that evaluates and prints itself (see mtile/rule.hpp).
#include "mtile/rule.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "mtile/types.hpp"

namespace mtile::rule {

enum class Kind : uint8_t { Literal, Var, Binary, Not, Call };

struct Expr::Node {
  Kind kind;
  int64_t value = 0;       // Literal
  std::string name;        // Var: the name; Binary: the operator; Call: the function
  std::vector<Expr> args;  // Binary: 2; Not: 1; Call: any
};

namespace {

using Node = Expr::Node;

Expr make(Kind kind, std::string name, std::vector<Expr> args) {
  for (const Expr& a : args)
    if (a.empty()) throw Error(fmt::format("rule: '{}' applied to an empty expression", name));
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->name = std::move(name);
  n->args = std::move(args);
  return Expr(std::move(n));
}

// C precedence, so that printed rules read as C++ would parse them.
int precedence(const Node& n) {
  if (n.kind != Kind::Binary) return 10;
  const std::string& op = n.name;
  if (op == "*" || op == "/" || op == "%") return 6;
  if (op == "+" || op == "-") return 5;
  if (op == "<" || op == "<=" || op == ">" || op == ">=") return 4;
  if (op == "==" || op == "!=") return 3;
  if (op == "&&") return 2;
  return 1;  // ||
}

std::string print(const Node& n) {
  switch (n.kind) {
    case Kind::Literal: return std::to_string(n.value);
    case Kind::Var: return n.name;
    case Kind::Not: {
      const Node& a = *n.args[0].node();
      return precedence(a) < 10 ? "!(" + print(a) + ")" : "!" + print(a);
    }
    case Kind::Call: {
      std::string s = n.name + "(";
      for (size_t i = 0; i < n.args.size(); ++i) s += (i ? ", " : "") + print(*n.args[i].node());
      return s + ")";
    }
    case Kind::Binary: {
      const Node &a = *n.args[0].node(), &b = *n.args[1].node();
      int p = precedence(n);
      std::string l = print(a), r = print(b);
      // && under || gets parentheses too, as compilers ask of C code.
      auto and_under_or = [&](const Node& c) { return n.name == "||" && c.kind == Kind::Binary && c.name == "&&"; };
      if (precedence(a) < p || and_under_or(a)) l = "(" + l + ")";
      // The right operand of the same level needs parentheses: a - (b - c), a / (b * c).
      if (precedence(b) < p || (precedence(b) == p && b.kind == Kind::Binary) || and_under_or(b)) r = "(" + r + ")";
      return l + " " + n.name + " " + r;
    }
  }
  return "?";
}

void collect(const Node& n, std::vector<std::string>& out) {
  if (n.kind == Kind::Var && std::find(out.begin(), out.end(), n.name) == out.end()) out.push_back(n.name);
  for (const Expr& a : n.args) collect(*a.node(), out);
}

class Evaluator {
 public:
  Evaluator(const Node& root, const Bindings& b) : root_(root), b_(b) {}

  uint64_t eval(const Node& n) const {
    switch (n.kind) {
      case Kind::Literal: return static_cast<uint64_t>(n.value);
      case Kind::Var: {
        auto it = b_.find(n.name);
        if (it == b_.end()) fail(fmt::format("'{}' has no value here", n.name));
        return it->second;
      }
      case Kind::Not: return eval(*n.args[0].node()) == 0;
      case Kind::Call: return call(n);
      case Kind::Binary: return binary(n);
    }
    return 0;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("rule '{}': {}", print(root_), what));
  }

  uint64_t arg(const Node& n, size_t i) const { return eval(*n.args[i].node()); }

  uint64_t binary(const Node& n) const {
    const std::string& op = n.name;
    if (op == "&&") return arg(n, 0) && arg(n, 1);  // short-circuit, as C++ reads it
    if (op == "||") return arg(n, 0) || arg(n, 1);
    uint64_t a = arg(n, 0), b = arg(n, 1), r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(a, b, &r)) fail(fmt::format("{} + {} overflows 64 bits", a, b));
      return r;
    }
    if (op == "-") {
      if (b > a) fail(fmt::format("{} - {} is negative", a, b));
      return a - b;
    }
    if (op == "*") {
      if (__builtin_mul_overflow(a, b, &r)) fail(fmt::format("{} * {} overflows 64 bits", a, b));
      return r;
    }
    if (op == "/" || op == "%") {
      if (b == 0) fail(fmt::format("{} {} 0: division by zero", a, op));
      return op == "/" ? a / b : a % b;
    }
    if (op == "<") return a < b;
    if (op == "<=") return a <= b;
    if (op == ">") return a > b;
    if (op == ">=") return a >= b;
    if (op == "==") return a == b;
    if (op == "!=") return a != b;
    fail("unknown operator " + op);
  }

  uint64_t call(const Node& n) const {
    const std::string& f = n.name;
    if (f == "select") return arg(n, 0) ? arg(n, 1) : arg(n, 2);
    if (f == "min") return std::min(arg(n, 0), arg(n, 1));
    if (f == "max") return std::max(arg(n, 0), arg(n, 1));
    if (f == "clamp") return std::min(std::max(arg(n, 0), arg(n, 1)), arg(n, 2));
    if (f == "pow2_ceil") {
      uint64_t a = arg(n, 0), p = 1;
      while (p < a) {
        if (p > (UINT64_MAX >> 1)) fail(fmt::format("pow2_ceil({}) overflows 64 bits", a));
        p <<= 1;
      }
      return p;
    }
    uint64_t a = arg(n, 0), b = arg(n, 1);
    if (b == 0) fail(fmt::format("{}({}, 0): division by zero", f, a));
    uint64_t q = a / b + (a % b != 0);
    if (f == "ceil_div") return q;
    if (f == "round_up") {
      uint64_t r = 0;
      if (__builtin_mul_overflow(q, b, &r)) fail(fmt::format("round_up({}, {}) overflows 64 bits", a, b));
      return r;
    }
    fail("unknown function " + f);
  }

  const Node& root_;
  const Bindings& b_;
};

}  // namespace

Expr Expr::literal(int64_t v) {
  if (v < 0) throw Error(fmt::format("rule: negative literal {} (rules are unsigned)", v));
  auto n = std::make_shared<Node>();
  n->kind = Kind::Literal;
  n->value = v;
  return Expr(std::move(n));
}

uint64_t Expr::eval(const Bindings& b) const {
  if (!node_) throw Error("rule: evaluating an empty expression");
  return Evaluator(*node_, b).eval(*node_);
}

std::string Expr::text() const {
  return node_ ? print(*node_) : "";
}

std::vector<std::string> Expr::names() const {
  std::vector<std::string> out;
  if (node_) collect(*node_, out);
  return out;
}

Expr var(const std::string& name) {
  if (name.empty()) throw Error("rule: a variable needs a name");
  auto n = std::make_shared<Node>();
  n->kind = Kind::Var;
  n->name = name;
  return Expr(std::move(n));
}

#define MTILE_RULE_BINARY(sym)                      \
  Expr operator sym(const Expr& a, const Expr& b) { \
    return make(Kind::Binary, #sym, {a, b});        \
  }
MTILE_RULE_BINARY(+)
MTILE_RULE_BINARY(-)
MTILE_RULE_BINARY(*)
MTILE_RULE_BINARY(/)
MTILE_RULE_BINARY(%)
MTILE_RULE_BINARY(<)
MTILE_RULE_BINARY(<=)
MTILE_RULE_BINARY(>)
MTILE_RULE_BINARY(>=)
MTILE_RULE_BINARY(==)
MTILE_RULE_BINARY(!=)
MTILE_RULE_BINARY(&&)
MTILE_RULE_BINARY(||)
#undef MTILE_RULE_BINARY

Expr operator!(const Expr& a) {
  return make(Kind::Not, "!", {a});
}
Expr min(const Expr& a, const Expr& b) {
  return make(Kind::Call, "min", {a, b});
}
Expr max(const Expr& a, const Expr& b) {
  return make(Kind::Call, "max", {a, b});
}
Expr ceil_div(const Expr& a, const Expr& b) {
  return make(Kind::Call, "ceil_div", {a, b});
}
Expr round_up(const Expr& a, const Expr& b) {
  return make(Kind::Call, "round_up", {a, b});
}
Expr clamp(const Expr& v, const Expr& lo, const Expr& hi) {
  return make(Kind::Call, "clamp", {v, lo, hi});
}
Expr select(const Expr& cond, const Expr& a, const Expr& b) {
  return make(Kind::Call, "select", {cond, a, b});
}
Expr pow2_ceil(const Expr& a) {
  return make(Kind::Call, "pow2_ceil", {a});
}

}  // namespace mtile::rule
