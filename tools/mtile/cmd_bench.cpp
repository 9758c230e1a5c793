// mtile bench: every kernel's bench shapes (or --shape), each checked against its float64
// reference and then timed, in a table or JSON. On CUDA a case is timed with device events: small
// launches (at most 256 rows, or at most 16 MiB moved) as replays of a CUDA graph of 20 launches,
// the others one launch at a time after a 256 MiB read that evicts the L2 cache; the copy
// bandwidth measured in the same run, each copy after the same read, is the yardstick. On the CPU
// engine, an interpreter whose times say nothing of a device, the wall clock, and by default each
// kernel's test shapes (a smoke run of the same checks and output: bench shapes of millions of
// elements would take hours).
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "backends/cuda/cuda_backend.hpp"
#include "commands.hpp"
#include "mtile/harness.hpp"

namespace mtile::cli {
namespace {

constexpr int kGraphLaunches = 20;              // launches captured in one graph
constexpr uint64_t kSmallBytes = 16ull << 20;   // at most this much traffic: a small launch
constexpr uint32_t kSmallRows = 256;            // or at most this many rows (tokens)
constexpr uint64_t kFlushBytes = 256ull << 20;  // read between timed runs: more than any L2
constexpr uint64_t kCopyBytes = 512ull << 20;   // the copy bandwidth's measurement
constexpr int kWarmupRuns = 3;

struct Case {
  Kernel kernel;
  ScalarType dtype;
  Shape shape;
};

struct Outcome {
  Case c;
  std::string timing;  // "graph", "events", "wall clock"; "" when not run
  std::optional<CheckResult> result;
  std::string error;    // why it failed (an error while checking or timing)
  std::string skipped;  // why it was not run (the shape is not one the kernel takes)
};

bool small_launch(const Shape& s, uint64_t bytes) {
  for (const char* rows : {"rows", "tokens"})
    if (auto it = s.find(rows); it != s.end() && it->second <= kSmallRows) return true;
  return bytes <= kSmallBytes;
}

// The cases: kernels matching `filter`, each in `dtype` (default: bf16 where it has it, else its
// first; "all": every one), on `shape` or its bench shapes (its example shape when it has none), or
// with `smoke` its test shapes.
std::vector<Case> select_cases(const std::string& filter, const std::string& dtype, const std::string& shape_text,
                               bool smoke) {
  std::regex re;
  try {
    re = std::regex(filter.empty() ? ".*" : filter);
  } catch (const std::regex_error& e) {
    throw Error(fmt::format("--filter '{}': not a regular expression ({})", filter, e.what()));
  }
  std::optional<ScalarType> only;
  if (!dtype.empty() && dtype != "all") {
    only = parse_type(dtype);
    if (!only) throw Error(fmt::format("--dtype {}: not an element type (f32, f16, bf16, or all)", dtype));
  }
  std::optional<Shape> shape;
  if (!shape_text.empty()) shape = parse_shape(shape_text);
  std::vector<Case> cases;
  for (const Kernel& k : kernels()) {
    if (!std::regex_search(k.name(), re)) continue;
    std::vector<ScalarType> types;
    if (only) {
      if (k->has_dtype(*only)) types = {*only};
    } else if (dtype == "all") {
      types = k->def.dtypes();
    } else {
      types = {k->has_dtype(ScalarType::bf16) ? ScalarType::bf16 : k->def.dtypes().at(0)};
    }
    std::vector<Shape> shapes = shape ? std::vector<Shape>{*shape} : smoke ? k->test_shapes : k->bench_shapes;
    if (shapes.empty()) shapes = {k->example_shape};
    for (ScalarType t : types)
      for (const Shape& s : shapes) cases.push_back({k, t, s});
  }
  if (cases.empty())
    throw Error(fmt::format("no kernel matches --filter '{}'{}", filter, only ? " in --dtype " + dtype : ""));
  return cases;
}

// How the timed launches of one case are measured on CUDA: graph replays for small launches,
// single launches after an L2 flush for the others.
std::function<double(const std::function<void()>&)> cuda_timer(cuda::CudaBackend& gpu, Buffer& flush, bool small) {
  if (small) {
    auto graph = std::make_shared<std::optional<cuda::CudaGraph>>();
    return [&gpu, graph](const std::function<void()>& launch) {
      if (!*graph) {
        graph->emplace(gpu.capture([&] {
          for (int i = 0; i < kGraphLaunches; ++i) launch();
        }));
        (*graph)->replay();  // the first replay uploads the graph
      }
      // The timed replay is queued behind an untimed one, so that the host's graph launch (a few
      // us) is not in the launches' time.
      (*graph)->replay();
      return static_cast<double>(gpu.time_ms([&] { (*graph)->replay(); })) / kGraphLaunches;
    };
  }
  return [&gpu, &flush](const std::function<void()>& launch) {
    gpu.evict_l2(flush);  // the case's tensors and the last run's dirty lines leave L2 untimed
    return static_cast<double>(gpu.time_ms(launch));
  };
}

// How CUDA cases are timed: by their size (auto), or all as graph replays, or all one launch at a
// time after an L2 flush (`--timing`).
enum class Timing { Auto, Graph, Events };

Outcome bench_case(Context& ctx, Backend& backend, const Case& c, int reps, Buffer* flush, const Config& config,
                   Timing timing) {
  Outcome out{c, {}, {}, {}, {}};
  std::shared_ptr<const LaunchPlan> plan;
  LaunchOptions launch;
  launch.config = config;
  try {
    plan = ctx.plan(backend, c.kernel, c.dtype, c.shape, launch);  // the shape's dims, Config and contract
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::User) throw;
    out.skipped = e.what();
    return out;
  }
  if (std::string why = ranks_unavailable(ctx, backend, c.kernel, c.shape); !why.empty()) {
    out.skipped = why;
    return out;
  }
  CheckOptions opts;
  opts.launch = launch;
  opts.timed_runs = reps;
  opts.warmup_runs = kWarmupRuns;
  auto* gpu = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!c.kernel->symmetric.empty()) {
    out.timing = "wall clock";  // every rank's launches (run_and_check: until the last rank is done)
  } else if (gpu && flush) {
    bool small = timing == Timing::Auto ? small_launch(c.shape, traffic_bytes(*plan)) : timing == Timing::Graph;
    out.timing = small ? "graph" : "events";
    opts.measure_ms = cuda_timer(*gpu, *flush, small);
  } else {
    out.timing = backend.name() == "cpu" ? "wall clock" : "events";
  }
  try {
    out.result = run_and_check(ctx, backend, c.kernel, c.dtype, c.shape, opts);
  } catch (const Error& e) {
    out.error = e.what();
  }
  return out;
}

double gb_per_s(const CheckResult& r) {
  return r.seconds > 0 ? r.bytes / r.seconds / 1e9 : 0.0;
}

nlohmann::json outcome_json(const Outcome& o, std::optional<double> copy_gbs) {
  nlohmann::json j = {{"kernel", o.c.kernel.name()}, {"dtype", type_name(o.c.dtype)}, {"shape", o.c.shape}};
  if (!o.skipped.empty()) {
    j["skipped"] = o.skipped;
    return j;
  }
  j["timing"] = o.timing;
  if (!o.result) {
    j["passed"] = false;
    j["error"] = o.error;
    return j;
  }
  const CheckResult& r = *o.result;
  double gbs = gb_per_s(r);
  j["config"] = r.config;
  j["grid"] = r.geometry.grid;
  j["tpg"] = r.geometry.tpg;
  j["median_us"] = r.seconds * 1e6;
  j["timed_runs"] = r.timed_runs;
  j["bytes"] = r.bytes;
  j["gb_per_s"] = gbs;
  j["pct_of_copy"] = copy_gbs ? nlohmann::json(100 * gbs / *copy_gbs) : nlohmann::json(nullptr);
  j["passed"] = r.passed;
  if (!r.passed) j["check"] = r.summary();
  return j;
}

void print_table(const std::vector<Outcome>& outcomes, std::optional<double> copy_gbs) {
  fmt::print("{:<24} {:<5} {:<34} {:<40} {:<10} {:>11} {:>9} {:>7}  {}\n", "kernel", "dtype", "shape", "config",
             "timing", "median us", "GB/s", "% copy", "check");
  for (const Outcome& o : outcomes) {
    std::string head =
        fmt::format("{:<24} {:<5} {:<34}", o.c.kernel.name(), type_name(o.c.dtype), shape_text(o.c.shape));
    if (!o.skipped.empty()) {
      fmt::print("{} skipped: {}\n", head, o.skipped);
    } else if (!o.result) {
      fmt::print("{} ERROR {}\n", head, o.error);
    } else {
      const CheckResult& r = *o.result;
      double gbs = gb_per_s(r);
      fmt::print("{} {:<40} {:<10} {:>11.2f} {:>9.1f} {:>7} {}\n", head, config_text(r.config), o.timing,
                 r.seconds * 1e6, gbs, copy_gbs ? fmt::format("{:.1f}", 100 * gbs / *copy_gbs) : "-",
                 r.passed ? "PASS" : "FAIL " + r.summary());
    }
  }
}

}  // namespace

Action add_bench(CLI::App& app) {
  struct Opts {
    std::string backend, filter, dtype, shape, out, timing = "auto";
    std::vector<std::string> configs;
    bool json = false;
    int reps = -1;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--backend", o->backend, "cpu, cuda or cuda:N (default: cuda when a GPU is present, else cpu)");
  app.add_option("--filter", o->filter, "only kernels whose name matches this regular expression");
  app.add_option("--dtype", o->dtype, "f32, f16, bf16 or all (default: bf16 where the kernel has it, else its first)");
  app.add_option("--shape", o->shape,
                 "one shape for every kernel that takes it, e.g. rows=64,n=4096 "
                 "(default: each kernel's bench shapes; on the CPU engine its test shapes)");
  app.add_option("--config", o->configs,
                 "set a meta-parameter, NAME=VALUE (repeatable; still checked: a kernel whose contract refuses "
                 "it, or that has no such meta-parameter, is skipped with the reason)");
  app.add_option("--reps", o->reps, "timed runs per case, median taken (default: 50 on a GPU, 3 on the CPU)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--timing", o->timing,
                 "CUDA: auto (graph replays for small launches, else one launch after an L2 flush), graph or "
                 "events (every case so)")
      ->check(CLI::IsMember({"auto", "graph", "events"}));
  app.add_flag("--json", o->json, "print the results as JSON");
  app.add_option("--out", o->out, "also write the results as JSON to this file");
  return [o] {
    Context& ctx = Context::global();
    Backend& backend = ctx.backend(o->backend);
    std::vector<Case> cases = select_cases(o->filter, o->dtype, o->shape, backend.name() == "cpu");
    const int reps = o->reps > 0 ? o->reps : backend.name() == "cpu" ? 3 : 50;
    const Config config = parse_assignments(o->configs, "--config", true);
    std::optional<cuda::CopyBandwidth> copy;
    std::optional<Buffer> flush;
    if (auto* gpu = dynamic_cast<cuda::CudaBackend*>(&backend)) {
      flush = gpu->alloc(ScalarType::u8, kFlushBytes);
      gpu->fill_bytes(*flush, 1);
      // Half a second of work first, so that the clocks have left idle before anything is timed.
      for (double ms = 0; ms < 500;)
        ms += gpu->time_ms([&] {
          for (int i = 0; i < 50; ++i) gpu->evict_l2(*flush);
        });
      copy = gpu->measure_copy_bandwidth(kCopyBytes, 20, &*flush);
    }
    std::optional<double> copy_gbs;
    if (copy) copy_gbs = copy->gb_per_s;
    const bool tty = isatty(STDERR_FILENO);
    std::vector<Outcome> outcomes;
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      fmt::print(stderr, "{}bench [{}/{}] {} {} {}{}", tty ? "\r\033[K" : "", i + 1, cases.size(), c.kernel.name(),
                 type_name(c.dtype), shape_text(c.shape), tty ? "" : "\n");
      const Timing timing = o->timing == "graph"    ? Timing::Graph
                            : o->timing == "events" ? Timing::Events
                                                    : Timing::Auto;
      outcomes.push_back(bench_case(ctx, backend, c, reps, flush ? &*flush : nullptr, config, timing));
    }
    if (tty) fmt::print(stderr, "\r\033[K");
    if (flush) backend.release(*flush);

    int ran = 0, failed = 0;
    for (const Outcome& out : outcomes) {
      if (!out.skipped.empty()) continue;
      ++ran;
      failed += !(out.result && out.result->passed);
    }
    if (ran == 0)
      throw Error(fmt::format("no kernel takes the shape{}: {}",
                              outcomes.size() > 1 ? "s given (the first's reason)" : "", outcomes.front().skipped));
    nlohmann::json cases_json = nlohmann::json::array();
    for (const Outcome& out : outcomes) cases_json.push_back(outcome_json(out, copy_gbs));
    const std::string shapes = !o->shape.empty() ? "given" : backend.name() == "cpu" ? "test" : "bench";
    nlohmann::json doc = {{"device", backend.device_name()},
                          {"backend", backend.name()},
                          {"shapes", shapes},
                          {"reps", reps},
                          {"copy_gb_per_s", copy_gbs ? nlohmann::json(*copy_gbs) : nlohmann::json(nullptr)},
                          {"cases", cases_json},
                          {"ran", ran},
                          {"failed", failed}};
    if (copy)
      doc["copy"] = {{"bytes", copy->bytes}, {"repetitions", copy->repetitions}, {"median_ms", copy->median_ms}};
    if (!o->out.empty()) {
      std::ofstream f(o->out);
      if (!(f << doc.dump(2) << "\n")) throw Error(fmt::format("--out {}: can't write the file", o->out));
    }
    if (o->json) {
      fmt::print("{}\n", doc.dump(2));
    } else {
      fmt::print("device    {} ({})\n", backend.device_name(), backend.name());
      if (copy)
        fmt::print("copy      {:.1f} GB/s (device-to-device copy of {} MiB, read + write, median of {})\n",
                   copy->gb_per_s, copy->bytes >> 20, copy->repetitions);
      else
        fmt::print("copy      bandwidth not measured (the CPU engine interprets the IR: its times are the engine's)\n");
      fmt::print("shapes    {}\n", shapes == "given"  ? "--shape"
                                   : shapes == "test" ? "each kernel's test shapes (a smoke run on the CPU engine)"
                                                      : "each kernel's bench shapes");
      fmt::print(
          "timing    median of {} runs after {} warm-up launches{}\n", reps, kWarmupRuns,
          copy ? "; graph: replays of 20 launches, events: one launch after a 256 MiB read that flushes L2" : "");
      print_table(outcomes, copy_gbs);
      fmt::print("{} cases run, {} failed, {} skipped\n", ran, failed, outcomes.size() - ran);
    }
    return failed ? 1 : 0;
  };
}

}  // namespace mtile::cli
