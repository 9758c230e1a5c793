#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "mtile/harness.hpp"

namespace mtile::cli {

nlohmann::json result_json(const CheckResult& r, const std::string& device) {
  nlohmann::json outs = nlohmann::json::array();
  for (const OutputCheck& o : r.outputs)
    outs.push_back({{"param", o.param},
                    {"rel_l2", o.rel_l2},
                    {"max_abs", o.max_abs},
                    {"unwritten", o.unwritten},
                    {"nan", o.nan},
                    {"inf", o.inf},
                    {"max_steps", o.max_steps},
                    {"tolerance", {{"rel_l2", o.tolerance.rel_l2}, {"max_abs", o.tolerance.max_abs}}},
                    {"passed", o.passed}});
  return {{"kernel", r.kernel},
          {"dtype", type_name(r.dtype)},
          {"shape", r.shape},
          {"config", r.config},
          {"backend", r.backend},
          {"device", device},
          {"grid", r.geometry.grid},
          {"tpg", r.geometry.tpg},
          {"outputs", outs},
          {"tolerance", {{"rel_l2", r.tolerance.rel_l2}, {"max_abs", r.tolerance.max_abs}}},
          {"passed", r.passed},
          {"seconds", r.seconds},
          {"timed_runs", r.timed_runs},
          {"bytes", r.bytes},
          {"gb_per_s", r.seconds > 0 ? r.bytes / r.seconds / 1e9 : 0.0}};
}

Action add_run(CLI::App& app) {
  struct Opts {
    std::string kernel, backend, dtype, shape;
    std::vector<std::string> configs;
    uint32_t tpg = 0;
    uint64_t seed = 1;
    int reps = -1;
    bool json = false;
    CpuChecks checks;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("kernel", o->kernel, "kernel name (see `mtile list`)")->required();
  app.add_option("--backend", o->backend,
                 "cpu, cpu:sanitize, cuda or cuda:N (default: cuda when a GPU is present, else cpu)");
  app.add_option("--dtype", o->dtype, "element type T: f32, f16 or bf16 (default: the kernel's first)");
  app.add_option("--shape", o->shape, "problem size, e.g. rows=64,n=4096 (default: the kernel's example)");
  app.add_option("--config", o->configs, "set a meta-parameter, NAME=VALUE (repeatable; still checked)");
  app.add_option("--tpg", o->tpg,
                 "threads per threadgroup: sets the meta-parameter the dispatch rule takes them from (e.g. "
                 "threads), else overrides the rule (still checked)");
  app.add_option("--seed", o->seed, "random seed of the inputs");
  app.add_option("--reps", o->reps, "timed launches after the check, 0 for none (default: 20 on a GPU, 1 on the CPU)")
      ->check(CLI::Range(0, 100000));
  app.add_flag("--json", o->json, "machine-readable output");
  add_cpu_checks(app, o->checks);
  return [o] {
    Kernel k = find_kernel(o->kernel);
    ScalarType t = parse_dtype_option(o->dtype, k);
    Shape shape = o->shape.empty() ? k->example_shape : parse_shape(o->shape);
    CheckOptions opts;
    opts.seed = o->seed;
    opts.launch.config = parse_assignments(o->configs, "--config", true);
    Context& ctx = Context::global();
    std::unique_ptr<Backend> checked = cpu_with_checks(o->checks, o->backend);
    Backend& backend = checked ? *checked : ctx.backend(o->backend);
    if (o->tpg) set_tpg(k.spec(), shape, backend.target(), t, o->tpg, opts.launch);
    opts.timed_runs = o->reps >= 0 ? o->reps : backend.name() == "cpu" ? 1 : 20;
    CheckOptions warm_up = opts;
    warm_up.timed_runs = 0;
    run_and_check(ctx, backend, k, t, shape, warm_up);  // compiles, and warms the caches and the device
    CheckResult r = run_and_check(ctx, backend, k, t, shape, opts);
    if (o->json) {
      fmt::print("{}\n", result_json(r, backend.device_name()).dump(2));
      return r.passed ? 0 : 1;
    }
    const Geometry& g = r.geometry;
    fmt::print("kernel    {}<{}>  ({})\n", r.kernel, type_name(t), k->summary);
    fmt::print("backend   {}  ({})\n", r.backend, backend.device_name());
    fmt::print("shape     {}  config {}  grid {}x{}x{}, tpg {}  ({})\n", shape_text(shape), config_text(r.config),
               g.grid[0], g.grid[1], g.grid[2], g.tpg, k->dispatch.text());
    for (const OutputCheck& oc : r.outputs) {
      fmt::print("check     {}: rel_l2 {:.3e} (tol {:.0e}), max_abs {:.3e} (tol {:.0e})", oc.param, oc.rel_l2,
                 oc.tolerance.rel_l2, oc.max_abs, oc.tolerance.max_abs);
      if (oc.tolerance.max_steps != UINT64_MAX)
        fmt::print(", {} steps of its type's grid (tol {})", oc.max_steps, oc.tolerance.max_steps);
      if (oc.unwritten) fmt::print(", {} elements never written", oc.unwritten);
      if (oc.nan) fmt::print(", {} NaN", oc.nan);
      if (oc.inf) fmt::print(", {} infinite", oc.inf);
      fmt::print("  {}\n", oc.passed ? "ok" : "WRONG");
    }
    if (r.timed_runs > 0)
      fmt::print("time      {:.4f} ms (median of {} launches, {}), {:.2f} MB moved, {:.1f} GB/s\n", r.seconds * 1e3,
                 r.timed_runs, r.backend == "cpu" || !k->symmetric.empty() ? "wall clock" : "device events",
                 r.bytes / 1e6, r.bytes / r.seconds / 1e9);
    else
      fmt::print("time      not timed (--reps 0); the checked launch took {:.4f} ms\n", r.first_seconds * 1e3);
    fmt::print("result    {}\n", r.passed ? "PASS" : "FAIL");
    return r.passed ? 0 : 1;
  };
}

}  // namespace mtile::cli
