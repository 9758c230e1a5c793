// Helpers shared by the tests: trace small kernels, run them on the CPU engine.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/engine.hpp"
#include "codegen/codegen.hpp"
#include "mtile/dsl.hpp"
#include "passes/pipeline.hpp"

namespace mtile::testing {

// Runs a lowered function over f32 tensors (one vector per tensor parameter, in order) on the CPU.
inline void run_f32(const ir::Function& f, Geometry g, std::vector<std::vector<float>*> tensors,
                    std::vector<uint64_t> constexprs = {}) {
  std::vector<cpu::TensorView> views;
  size_t k = 0;
  for (const ir::Param& p : f.params) {
    if (p.kind == ir::ParamKind::Tensor) {
      auto* v = tensors.at(k++);
      views.push_back({v->data(), ScalarType::f32, v->size()});
    } else {
      views.push_back({});
    }
  }
  constexprs.resize(f.params.size(), 0);
  cpu::execute(f, g, views, constexprs);
}

// The message of the mtile::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline Geometry geometry(uint32_t groups, uint32_t tpg) {
  Geometry g;
  g.grid[0] = groups;
  g.tpg = tpg;
  return g;
}

// A 16-bit float's bits (bf16 or f16, rounded to nearest) and the value of such bits.
inline uint16_t half_bits(ScalarType t, float v) {
  return t == ScalarType::bf16 ? f32_to_bf16_bits(v) : f32_to_f16_bits(v);
}
inline float half_value(ScalarType t, uint16_t h) {
  return t == ScalarType::bf16 ? bf16_bits_to_f32(h) : f16_bits_to_f32(h);
}

inline bool contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

}  // namespace mtile::testing
