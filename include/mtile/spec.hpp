// Helpers for writing kernel specs (mtile/registry.hpp), inside the repo or out of it.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mtile/registry.hpp"
#include "mtile/rule.hpp"

namespace mtile::spec {

// A dim's value in a shape, for references: dim(s, "rows"). Throws Error naming it when absent.
inline uint32_t dim(const Shape& s, const std::string& name) {
  auto it = s.find(name);
  if (it == s.end()) throw Error("shape " + shape_text(s) + " has no '" + name + "'");
  return it->second;
}

// Tolerances for kernels whose outputs are O(1) and computed in f32 from dtype-rounded inputs:
// the output's rounding dominates (2^-24, 2^-11, 2^-8 relative).
inline std::map<ScalarType, Tolerance> float_tolerances() {
  return {{ScalarType::f32, {1e-5, 1e-4}}, {ScalarType::f16, {5e-4, 4e-3}}, {ScalarType::bf16, {4e-3, 3e-2}}};
}

// One threadgroup per row, exactly: grid == rows on x and 1 on y and z. A kernel that indexes
// rows by program_id(0) needs all three (a larger grid reads past the tensors, a second axis
// writes every row twice).
inline std::vector<rule::Expr> one_threadgroup_per_row(const rule::Expr& rows = rule::var("rows")) {
  using rule::var;
  return {var("grid") == rows, var("grid_y") == 1, var("grid_z") == 1};
}

// Runs fn(i) for every i in [0, count) on the host's threads where `work` (the multiply-adds of
// all of them) is worth starting threads for: a float64 reference of a large matrix or attention
// shape then takes seconds rather than minutes (`mtile bench` checks every case against it before
// timing). Each i runs whole on one thread, so results do not depend on the number of threads;
// the first exception fn throws is rethrown here once every thread has stopped.
inline void parallel_for(uint64_t count, uint64_t work, const std::function<void(uint64_t)>& fn) {
  constexpr uint64_t kWorkPerThread = uint64_t{1} << 24;  // about 10 ms of float64 multiply-adds
  uint64_t threads =
      std::min<uint64_t>({std::max(1u, std::thread::hardware_concurrency()), count, work / kWorkPerThread + 1});
  if (threads <= 1) {
    for (uint64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::atomic<uint64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_lock;
  auto worker = [&] {
    for (uint64_t i; (i = next.fetch_add(1)) < count;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> hold(failure_lock);
        if (!failure) failure = std::current_exception();
        next = count;  // the others stop at their next item
      }
    }
  };
  std::vector<std::thread> pool;
  for (uint64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace mtile::spec
