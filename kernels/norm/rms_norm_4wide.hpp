// Contract and spec pieces shared by the kernels that give each thread 4 consecutive elements of
// a row (mt_rms_norm, ffai_rms_norm_residual): N = TPG * 4, TPG a multiple of 32, TPG <= 1024.
#pragma once
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {

inline void four_per_thread_contract(KernelSpec& k) {
  k.dims = {"rows", "n"};
  k.dispatch_rule = "grid = rows, tpg = n / 4";
  k.dispatch = [](const Shape& s) {
    Geometry g;
    g.grid[0] = dim(s, "rows");
    g.tpg = dim(s, "n") / 4;
    return g;
  };
  k.preconditions = {
      {"n % 128 == 0", {"n"}, [](const auto& v) { return v.at("n") % 128 == 0; }},
      {"n <= 4096", {"n"}, [](const auto& v) { return v.at("n") <= 4096; }},
      {"tpg * 4 == n", {"tpg", "n"}, [](const auto& v) { return v.at("tpg") * 4 == v.at("n"); }},
      {"tpg % 32 == 0", {"tpg"}, [](const auto& v) { return v.at("tpg") % 32 == 0; }},
      {"grid == rows", {"grid", "rows"}, [](const auto& v) { return v.at("grid") == v.at("rows"); }},
  };
  k.constexprs = [](const Shape& s) { return std::map<std::string, uint32_t>{{"n", dim(s, "n")}}; };
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
