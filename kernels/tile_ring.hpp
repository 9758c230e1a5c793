// The loop over buffers filled by tile copies (docs/IR.md "Tile copies") that attention_decode's
// tensor-core body and gemv_tiles share: thread 0 fills `stages` buffers stages - 1 steps ahead,
// step i into buffer i % stages once every thread has released the step before it there (mbarrier
// `empty`), its copies completing on mbarrier `full`; every thread waits for a step's copies, runs
// the body on it and releases the buffer. No barrier in the loop.
#pragma once
#include <functional>

#include "mtile/dsl.hpp"

namespace mtile::lib {

struct TileRing {
  uint32_t stages, threads, bytes;  // bytes: what one step's copies bring in
  // Step i's copy_tiles into buffer b, on mbarrier b of `full` (thread 0).
  std::function<void(const dsl::Val& i, const dsl::Val& b, const dsl::Mbarriers& full)> copies;
  // Every thread's work on step i, in buffer b.
  std::function<void(const dsl::Val& i, const dsl::Val& b)> body;

  void run(const dsl::Val& steps) const {
    using namespace dsl;
    Mbarriers full = mbarriers(stages), empty = mbarriers(stages);
    if_(tid() == 0u, [&] {
      for (uint32_t b = 0; b < stages; ++b) {
        full.init(b, 1u);  // thread 0's announcement, then the copies' bytes
        empty.init(b, threads);
      }
    });
    barrier();
    auto fill = [&](const Val& i) {
      Val b = i % stages;
      empty.wait(b, (i / stages & 1u) ^ 1u);  // a buffer's first round is free
      full.arrive_expect(b, bytes);
      copies(i, b, full);
    };
    if_(tid() == 0u, [&] {
      for (uint32_t i = 0; i + 1 < stages; ++i) if_(lit(i) < steps, [&] { fill(lit(i)); });
    });
    for_(0u, steps, 1u, [&](Val i) {
      if_(tid() == 0u && i + (stages - 1) < steps, [&] { fill(i + (stages - 1)); });
      Val b = named("buffer", i % stages);
      full.wait(b, i / stages & 1u);
      body(i, b);
      empty.arrive(b);
    });
  }
};

}  // namespace mtile::lib
