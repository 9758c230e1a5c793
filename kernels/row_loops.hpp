// Loops shared by the library's kernels over the columns of a row (or the elements of a tensor)
// that one thread owns. A visitor gets the first column and how many follow it, and writes its
// accesses as `at + j` with j a C++ integer: vectorize_memory then turns a chunk's accesses to a
// tensor into one 16-byte access where it can prove `at` aligned (docs/writing-kernels.md).
#pragma once
#include <cstdint>

#include "mtile/dsl.hpp"

namespace mtile::lib {

// Lanes of a simdgroup: simd_lane() is tid() % 32 on every target (docs/IR.md).
constexpr uint32_t kSimdLanes = 32;

// `at + j`, without an add for j = 0 (a single column is visited as `at` itself).
inline dsl::Val column(const dsl::Val& at, uint32_t j) {
  return j == 0 ? at : at + j;
}

// Visits the columns [0, n) of a row that lane `lane` of `lanes` owns: chunks of `chunk`
// consecutive columns (from lane * chunk, every lanes * chunk) while whole chunks fit, then the
// n % chunk columns left, one a lane. visit(at, count): columns at .. at + count - 1, count being
// `chunk` or 1, in increasing order for each lane.
template <class Visit>
void for_row_chunks(const dsl::Val& lane, const dsl::Val& lanes, const dsl::Val& n, uint32_t chunk, Visit&& visit) {
  using namespace dsl;
  Val chunked = named("chunked", n - n % chunk);
  for_(lane * chunk, chunked, lanes * chunk, [&](Val c) { visit(c, chunk); });
  for_(chunked + lane, n, lanes, [&](Val i) { visit(i, 1u); });
}

// One thread's chunk of `chunk` consecutive columns from `at` in a row (or tensor) of n: visited
// at once when it lies within n (visit(at, chunk)), else column by column as far as n goes
// (visit(at + j, 1) under a guard). The caller's contract keeps at + chunk below 2^32.
template <class Visit>
void visit_chunk(const dsl::Val& at, const dsl::Val& n, uint32_t chunk, Visit&& visit) {
  using namespace dsl;
  if_(
      at + chunk <= n, [&] { visit(at, chunk); },
      [&] {
        for (uint32_t j = 0; j < chunk; ++j) if_(column(at, j) < n, [&] { visit(column(at, j), 1u); });
      });
}

}  // namespace mtile::lib
