// Shrinking a failing program: edits of its description that keep it valid (fuzz/program.hpp),
// kept while the failure persists.
#pragma once
#include <chrono>
#include <functional>

#include "fuzz/program.hpp"

namespace mtile::fuzz {

struct ShrinkLimits {
  int max_tries = 4000;  // programs tried
  std::chrono::seconds max_time{60};
};

// Greedily removes statements (nested ones included), replaces ifs and loops by their bodies,
// and shrinks the grid and the threadgroup, keeping each edit after which `still_fails` holds.
// Returns the smallest program found; `tries` (optional) counts the programs tried.
Program shrink(Program p, const std::function<bool(const Program&)>& still_fails, const ShrinkLimits& limits = {},
               int* tries = nullptr);

}  // namespace mtile::fuzz
