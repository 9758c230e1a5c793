// Divisibility of index values: the largest power of two (up to 16) that provably divides a u32
// or u64 index. vectorize_memory forms only accesses it proves aligned; a launch checks the
// explicit vector accesses of load_n/store_n with it (misaligned_vector_accesses).
#pragma once
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "mtile/ir.hpp"

namespace mtile::passes {

// What the analysis needs of a value's definition (copied: passes move instructions around).
struct IndexDef {
  ir::Op op;
  ScalarType type;
  std::vector<ir::Id> args;
  uint64_t bits;
  int param;
};

class Divisibility {
 public:
  static constexpr uint32_t kMaxFactor = 16;  // 8 lanes at most need 8; 16 keeps products exact
  // `constexprs`: values of constexpr parameters by name, known at a launch though not baked.
  explicit Divisibility(const ir::Function& f, const std::map<std::string, uint32_t>& constexprs = {});

  uint32_t factor(ir::Id id);
  const IndexDef* def(ir::Id id) const;
  // The definition of `id` when it is an index-typed (u32, u64) constant.
  const IndexDef* constant(ir::Id id) const;
  // The index expression for people: "program_id.x * n + thread_id * 3" (n = 100).
  std::string text(ir::Id id) const;

 private:
  uint32_t compute(ir::Id id);

  const ir::Function& f_;
  std::unordered_map<ir::Id, IndexDef> def_;
  std::unordered_map<int, uint32_t> constexpr_values_;  // by parameter index
  std::unordered_map<ir::Id, uint32_t> memo_;
};

// Whether an index of this type is one the analysis reads: u32, or u64 after widen_indices.
bool is_index_type(ScalarType t);

// The explicit vector accesses (LoadVector, StoreVector from load_n/store_n) and the async copies
// (both their indices) of a traced kernel whose first index is not provably a multiple of its
// lanes, given the launch's constexpr values: one line each naming the tensor or array, the
// lanes, the index and the source line. Calls are inlined
// first, so a callee's accesses are checked with the caller's arguments.
std::vector<std::string> misaligned_vector_accesses(const ir::Function& traced,
                                                    const std::map<std::string, uint32_t>& constexprs);

}  // namespace mtile::passes
