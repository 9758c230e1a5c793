// mtile fuzz: differential fuzzing of the pass pipeline (CPU engine) or of a GPU backend.
#include <fmt/format.h>

#include "commands.hpp"
#include "fuzz/fuzz.hpp"

namespace mtile::cli {

Action add_fuzz(CLI::App& app) {
  struct Opts {
    double seconds = 0;
    uint64_t seed = 1;
    std::string backend = "cpu";
    uint64_t max_kernels = 0;
    int max_failures = 3;
    int stmts = 48;
    bool no_shrink = false, show = false, nvrtc = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--seconds", o->seconds, "stop after this many seconds (default: 10 without --max-kernels)");
  app.add_option("--seed", o->seed, "kernel i is generated from seed + i (default 1)");
  app.add_option("--backend", o->backend,
                 "cpu: the engine after the full pass pipeline against the engine after the minimal lowering; "
                 "cuda or cuda:N: the CUDA backend against the engine")
      ->check(CLI::IsMember({"cpu", "cuda"}) |
              CLI::Validator([](std::string& s) { return s.rfind("cuda:", 0) == 0 ? "" : "not cpu, cuda or cuda:N"; },
                             "cuda:N"));
  app.add_option("--max-kernels", o->max_kernels, "stop after this many kernels");
  app.add_option("--max-failures", o->max_failures, "stop after this many failures (default 3)");
  app.add_option("--statements", o->stmts, "statements per generated kernel at most (default 48)");
  app.add_flag("--no-shrink", o->no_shrink, "print failures as generated, unshrunk");
  app.add_flag("--show", o->show, "print every kernel's IR, as traced and as one side ran it");
  app.add_flag("--nvrtc", o->nvrtc, "cpu: also compile the CUDA the kernels lowered for a GPU give, with NVRTC");
  return [o] {
    fuzz::FuzzOptions f;
    f.seed = o->seed;
    f.max_kernels = o->max_kernels;
    f.seconds = o->seconds > 0 || o->max_kernels > 0 ? o->seconds : 10;
    f.max_failures = std::max(1, o->max_failures);
    f.shrink = !o->no_shrink;
    f.show = o->show;
    f.gen.max_stmts = std::max(1, o->stmts);
    fuzz::Side a = fuzz::engine_full_pipeline(o->nvrtc), b = fuzz::engine_minimal_lowering();
    if (o->backend != "cpu") {
      int ordinal = o->backend == "cuda" ? 0 : std::stoi(o->backend.substr(5));
      a = fuzz::cuda_device(ordinal);
      f.tolerant = true;
      f.gen.bounded_inexact = true;
      f.reproduce_flags = "--backend " + o->backend;
    }
    fuzz::FuzzReport r = fuzz::fuzz(f, a, b, stdout);
    return r.mismatches + r.invalid ? 1 : 0;
  };
}

}  // namespace mtile::cli
