// mtile fuzz: random kernels (fuzz/generator.hpp) run two ways (fuzz/sides.hpp); a disagreement
// is shrunk to a small reproducer and printed with its seed, its IR, the inputs and both results.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz/generator.hpp"
#include "fuzz/sides.hpp"

namespace mtile::fuzz {

struct FuzzOptions {
  uint64_t seed = 1;         // kernel i is generated from seed + i
  double seconds = 0;        // stop once this long has passed (0: no limit)
  uint64_t max_kernels = 0;  // stop after this many kernels (0: no limit)
  int max_failures = 3;      // stop after this many failures, each shrunk and printed
  bool shrink = true;
  bool show = false;      // print every kernel's IR and what each side ran
  bool tolerant = false;  // compare inexact slots within tolerance (a GPU against the engine)
  GenOptions gen;
  std::string reproduce_flags;  // what the printed "mtile fuzz --seed N" line adds, e.g. "--backend cuda"
};

struct FuzzReport {
  uint64_t kernels = 0;       // generated and run both ways
  uint64_t instructions = 0;  // IR instructions traced, over all kernels
  uint64_t mismatches = 0;    // different results, or an error on one side only
  uint64_t invalid = 0;       // the DSL rejected a kernel, or both sides failed: a generator bug
  double seconds = 0;
};

// What running a program both ways showed.
struct Verdict {
  enum class Kind { Agree, Mismatch, OnlyAFailed, OnlyBFailed, BothFailed, TraceFailed } kind = Kind::Agree;
  std::string detail;
  Outcome a, b;
  std::optional<Difference> difference;
  std::string traced;  // the program's IR, printed (empty when tracing failed)
  uint64_t instructions = 0;
};
Verdict judge(const Program& p, const Side& a, const Side& b, bool tolerant);

// Fuzzes until a limit of `o` is reached, printing every failure and a summary to `out`.
FuzzReport fuzz(const FuzzOptions& o, const Side& a, const Side& b, std::FILE* out);

}  // namespace mtile::fuzz
