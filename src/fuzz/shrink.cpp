// shrink: see shrink.hpp. Statements are numbered in preorder (an if or a loop before its body);
// later statements are tried first, since they use earlier ones and not the other way round.
#include "fuzz/shrink.hpp"

#include <optional>

namespace mtile::fuzz {
namespace {

// What replaces a statement (nothing, its body), or nullopt where the edit does not apply.
using Edit = std::function<std::optional<std::vector<Stmt>>(const Stmt&)>;

// Replaces the n-th statement (preorder) of `b` by what `edit` gives for it, in place; false when
// there is no n-th statement.
bool edit_nth(std::vector<Stmt>& b, size_t& n, const Edit& edit, bool* applied) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (n == 0) {
      std::optional<std::vector<Stmt>> repl = edit(b[i]);
      *applied = repl.has_value();
      if (repl) {
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(i));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(i), repl->begin(), repl->end());
      }
      return true;
    }
    --n;
    if (edit_nth(b[i].body, n, edit, applied) || edit_nth(b[i].orelse, n, edit, applied)) return true;
  }
  return false;
}

std::optional<Program> edited(const Program& p, size_t n, const Edit& edit) {
  Program q = p;
  bool applied = false;
  if (!edit_nth(q.body, n, edit, &applied) || !applied) return std::nullopt;
  return q;
}

const Edit kRemove = [](const Stmt&) { return std::optional<std::vector<Stmt>>(std::vector<Stmt>{}); };
const Edit kThenBody = [](const Stmt& s) -> std::optional<std::vector<Stmt>> {
  if (s.kind != Stmt::Kind::If && s.kind != Stmt::Kind::For && s.kind != Stmt::Kind::While) return std::nullopt;
  return s.body;
};
const Edit kElseBody = [](const Stmt& s) -> std::optional<std::vector<Stmt>> {
  if (s.kind != Stmt::Kind::If || s.orelse.empty()) return std::nullopt;
  return s.orelse;
};

std::vector<Geometry> smaller_geometries(const Geometry& g) {
  std::vector<Geometry> out;
  if (g.grid != std::array<uint32_t, 3>{1, 1, 1}) out.push_back({{1, 1, 1}, g.tpg});
  uint32_t least = g.tpg % 32 == 0 ? 32 : 1;  // simdgroup operations need whole simdgroups
  if (g.tpg > least) out.push_back({g.grid, least});
  return out;
}

}  // namespace

Program shrink(Program p, const std::function<bool(const Program&)>& still_fails, const ShrinkLimits& limits,
               int* tries) {
  const auto deadline = std::chrono::steady_clock::now() + limits.max_time;
  int tried = 0;
  auto out_of_budget = [&] { return tried >= limits.max_tries || std::chrono::steady_clock::now() > deadline; };
  auto attempt = [&](const Program& q) {
    ++tried;
    if (!still_fails(q)) return false;
    p = q;
    return true;
  };
  for (bool progress = true; progress && !out_of_budget();) {
    progress = false;
    for (const Geometry& g : smaller_geometries(p.geometry)) {
      Program q = p;
      q.geometry = g;
      if (!out_of_budget() && attempt(q)) progress = true;
    }
    for (const Edit* edit : {&kRemove, &kThenBody, &kElseBody}) {
      for (size_t n = count_stmts(p.body); n-- > 0 && !out_of_budget();) {
        std::optional<Program> q = edited(p, n, *edit);
        if (q && attempt(*q)) progress = true;
      }
    }
  }
  if (tries) *tries = tried;
  return p;
}

}  // namespace mtile::fuzz
