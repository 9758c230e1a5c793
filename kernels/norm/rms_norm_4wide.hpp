// Contract and spec pieces shared by the kernels that give each thread 4 consecutive elements of
// a row (mt_rms_norm, ffai_rms_norm_residual): N = TPG * 4, TPG a multiple of 32, TPG <= 1024.
#pragma once
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

inline void four_per_thread_contract(KernelSpec& k) {
  using rule::var;
  rule::Expr n = var("n"), tpg = var("tpg");
  k.dims = {"rows", "n"};
  k.dispatch = {.grid = var("rows"), .tpg = n / 4};
  k.preconditions = {n % 128 == 0, n <= 4096, tpg * 4 == n, tpg % 32 == 0};
  for (const rule::Expr& e : spec::one_threadgroup_per_row()) k.preconditions.push_back(e);
  k.inits = {{"eps_buf", Init::constant(1e-6)}};
  k.tolerance = float_tolerances();
  k.example_shape = {{"rows", 64}, {"n", 4096}};
  k.test_shapes = {{{"rows", 1}, {"n", 128}},
                   {{"rows", 7}, {"n", 128}},
                   {{"rows", 3}, {"n", 512}},
                   {{"rows", 2}, {"n", 4096}},
                   {{"rows", 9}, {"n", 4096}}};
  k.bench_shapes = {{{"rows", 1}, {"n", 4096}},
                    {{"rows", 256}, {"n", 4096}},
                    {{"rows", 2048}, {"n", 4096}},
                    {{"rows", 16384}, {"n", 4096}}};
}

}  // namespace mtile::lib
