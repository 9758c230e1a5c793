// The end of a tensor-parallel block on every CUDA device of the host (issue #13), bf16:
//   (a) NCCL: all_reduce_sum of each rank's partial sums x_r (in place), then add_rms_norm;
//   (b) fused: allreduce_add_rms_norm, one launch a rank, peers' x read over NVLink.
// Each shape is checked first: (b)'s out and residual on every rank against (a)'s from the same
// inputs (a wrong fused kernel gives no figures). Times are device events on every rank's stream
// around K calls issued from this one thread, the max over ranks; then the same calls replayed
// from one CUDA graph a rank. bench/allreduce_peers.py runs it next to torch.
//
//   mtile_allreduce_figures [--json FILE] [--ranks N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "backends/cuda/cuda_backend.hpp"
#include "mtile/distributed.hpp"
#include "mtile/harness.hpp"

using namespace mtile;

namespace {

constexpr ScalarType kT = ScalarType::bf16;
constexpr float kEps = 1e-6f;

// Values in (-1, 1) as bf16 bits from a counter hash (splitmix64): fast at 67M elements.
std::vector<uint16_t> random_bf16(uint64_t n, uint64_t seed) {
  std::vector<uint16_t> v(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t z = (seed + 1) * 0x9e3779b97f4a7c15ull + i * 0xd1b54a32d192ed03ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    v[i] = f32_to_bf16_bits(static_cast<float>(z >> 40) * 0x1p-23f - 1.0f);
  }
  return v;
}

double max_abs_diff(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(double(bf16_bits_to_f32(a[i])) - bf16_bits_to_f32(b[i])));
  return m;
}

// A fused kernel whose ranks never meet spins forever: say where, and exit.
class Watchdog {
 public:
  Watchdog() : thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void arm(std::string what, int seconds) {
    std::lock_guard lock(mu_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  }

 private:
  void watch() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (!stop_ && std::chrono::steady_clock::now() > deadline_) {
        fmt::print(stderr, "mtile_allreduce_figures: stuck in {} (a device wait that never ends); exiting\n", what_);
        std::fflush(stdout);
        std::_Exit(4);
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string what_ = "start-up";
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  std::thread thread_;
};

// Buffers and symmetric memory of one shape, released however the shape ends.
class Pool {
 public:
  ~Pool() {
    for (auto& [b, buf] : buffers_) try {
        b->release(buf);
      } catch (...) {
      }
    for (SymmetricMemory& m : symmetric_) try {
        m.views[0].owner->release_symmetric(m);
      } catch (...) {
      }
  }
  Buffer& alloc(Backend& b, ScalarType t, uint64_t count) {
    return buffers_.emplace_back(&b, b.alloc(t, count)).second;
  }
  SymmetricMemory& symmetric(const std::vector<Backend*>& ranks, ScalarType t, uint64_t count) {
    return symmetric_.emplace_back(alloc_symmetric(ranks, t, count));
  }

 private:
  std::deque<std::pair<Backend*, Buffer>> buffers_;
  std::deque<SymmetricMemory> symmetric_;
};

// A launch's tensors in parameter order, from buffers by parameter name.
std::vector<Buffer*> bind(const LaunchPlan& plan, const std::map<std::string, Buffer*>& by_name) {
  std::vector<Buffer*> out(plan.params().size(), nullptr);
  for (size_t i = 0; i < out.size(); ++i) {
    const ir::Param& p = plan.params()[i];
    if (p.kind != ir::ParamKind::Tensor) continue;
    auto it = by_name.find(p.name);
    if (it == by_name.end()) throw Error(fmt::format("{}: no buffer for its tensor {}", plan.kernel.name(), p.name));
    out[i] = it->second;
  }
  return out;
}

struct Ranks {
  Context& ctx;
  std::vector<Backend*> backends;
  std::vector<cuda::CudaBackend*> cuda;
  std::vector<Communicator>& comms;
  size_t size() const { return backends.size(); }
  void synchronize() {
    for (Backend* b : backends) b->synchronize();
  }
};

// Microseconds a call of `once` (work on every rank) takes: events around `iters` calls on each
// rank's stream, the slowest rank; the median of 3 such loops.
double time_eager(Ranks& R, const std::function<void()>& once, int iters) {
  std::vector<double> loops;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<cuda::CudaEvent> start, end;
    for (auto* c : R.cuda) start.push_back(c->create_event()), end.push_back(c->create_event());
    for (size_t r = 0; r < R.size(); ++r) R.cuda[r]->record(start[r]);
    for (int i = 0; i < iters; ++i) once();
    for (size_t r = 0; r < R.size(); ++r) R.cuda[r]->record(end[r]);
    double worst = 0;
    for (size_t r = 0; r < R.size(); ++r) worst = std::max<double>(worst, R.cuda[r]->elapsed_ms(start[r], end[r]));
    loops.push_back(worst * 1e3 / iters);
  }
  std::sort(loops.begin(), loops.end());
  return loops[1];
}

// One graph a rank of `calls` calls of `once`, captured on every rank's stream at once (NCCL's
// group launches on all of them), then timed like time_eager over `replays` replays.
double time_graphs(Ranks& R, const std::function<void()>& once, int calls, int replays) {
  std::vector<cuda::CudaGraph> graphs = cuda::CudaBackend::capture_together(R.cuda, [&] {
    for (int i = 0; i < calls; ++i) once();
  });
  auto replay = [&] {
    for (auto& g : graphs) g.replay();
  };
  replay();
  R.synchronize();
  return time_eager(R, replay, replays) / calls;
}

struct Result {
  uint32_t rows = 0, n = 0;
  uint64_t bytes = 0;
  std::optional<double> a_us, b_us, a_graph_us, b_graph_us, max_abs_out, max_abs_residual;
  std::string check = "n/a";  // pass, FAIL, n/a (no fused kernel)
  std::string note;
};

Result measure(Ranks& R, const Kernel& add_norm, const Kernel& fused, uint32_t rows, uint32_t n, bool* graph_a_ok,
               Watchdog& dog) {
  const size_t nr = R.size();
  const uint64_t m = uint64_t(rows) * n;
  Result res;
  res.rows = rows;
  res.n = n;
  // Per rank, as the fused kernel moves it: every rank's x, residual read and written, out, w.
  res.bytes = storage_bytes(kT) * (nr * m + 3 * m + n);
  const std::string where = fmt::format("rows={},n={}", rows, n);
  dog.arm(where + ": inputs and compiles", 300);
  Pool pool;
  std::vector<std::vector<uint16_t>> x(nr);
  for (size_t r = 0; r < nr; ++r) x[r] = random_bf16(m, 100 + r);
  std::vector<uint16_t> residual = random_bf16(m, 7), w = random_bf16(n, 8);

  // (a): own buffers a rank; x_r summed in place, then normalised in place.
  Shape s2{{"rows", rows}, {"n", n}};
  std::vector<Buffer*> xa(nr), ra(nr), wr(nr), eps(nr);
  std::vector<std::shared_ptr<const LaunchPlan>> plan_a(nr);
  std::vector<std::vector<Buffer*>> ta(nr);
  for (size_t r = 0; r < nr; ++r) {
    Backend& b = *R.backends[r];
    xa[r] = &pool.alloc(b, kT, m);
    ra[r] = &pool.alloc(b, kT, m);
    wr[r] = &pool.alloc(b, kT, n);
    eps[r] = &pool.alloc(b, ScalarType::f32, 1);
    b.upload(*wr[r], w.data());
    b.upload(*eps[r], &kEps);
    plan_a[r] = R.ctx.plan(b, add_norm, kT, s2);
    ta[r] = bind(*plan_a[r], {{"x", xa[r]}, {"residual", ra[r]}, {"w", wr[r]}, {"eps_buf", eps[r]}});
  }
  std::vector<const Buffer*> send(xa.begin(), xa.end());
  auto run_a = [&] {
    all_reduce_sum(R.comms, send, xa);
    for (size_t r = 0; r < nr; ++r) R.ctx.run(*R.backends[r], *plan_a[r], ta[r]);
  };

  // (b): x and flags symmetric, a slice a rank as large as the kernel's rules ask.
  Shape s3{{"ranks", uint32_t(nr)}, {"rows", rows}, {"n", n}};
  std::vector<Buffer*> rb(nr), out(nr);
  SymmetricMemory* xm = nullptr;
  std::vector<std::shared_ptr<const LaunchPlan>> plan_b(nr);
  std::vector<std::vector<Buffer*>> tb(nr);
  std::vector<LaunchOptions> opts(nr);
  if (fused) {
    Resolved rules = resolve(fused.spec(), s3, R.backends[0]->target());
    xm = &pool.symmetric(R.backends, kT, rules.elements.at("x") / nr);
    SymmetricMemory& fm = pool.symmetric(R.backends, ScalarType::u32, rules.elements.at("flags") / nr);
    if (xm->slot > UINT32_MAX) throw Error(fmt::format("{}: x_slot {} passes u32", where, xm->slot));
    for (size_t r = 0; r < nr; ++r) {
      Backend& b = *R.backends[r];
      rb[r] = &pool.alloc(b, kT, m);
      out[r] = &pool.alloc(b, kT, m);
      opts[r].config = {{"x_slot", uint32_t(xm->slot)}, {"flags_slot", uint32_t(fm.slot)}};
      opts[r].scalars = {{"rank", double(r)}};
      plan_b[r] = R.ctx.plan(b, fused, kT, s3, opts[r]);
      tb[r] = bind(*plan_b[r], {{"x", &xm->views[r]},
                                {"flags", &fm.views[r]},
                                {"residual", rb[r]},
                                {"w", wr[r]},
                                {"out", out[r]},
                                {"eps_buf", eps[r]}});
    }
  }
  auto run_b = [&] { run_collective(R.ctx, R.backends, plan_b, tb, opts); };

  // The check: the same inputs through both.
  dog.arm(where + ": check", 120);
  for (size_t r = 0; r < nr; ++r) {
    R.backends[r]->upload(*xa[r], x[r].data());
    R.backends[r]->upload(*ra[r], residual.data());
    if (!fused) continue;
    R.backends[r]->upload(*rb[r], residual.data());
    // Rank r's partial sums into its own slice, by its own device.
    R.cuda[r]->make_current();
    MTILE_CU(cuMemcpyHtoDAsync_v2, xm->handle() + r * xm->slot * storage_bytes(kT), x[r].data(), m * storage_bytes(kT),
             R.cuda[r]->stream());
  }
  R.synchronize();
  run_a();
  if (fused) run_b();
  R.synchronize();
  if (fused) {
    double out_diff = 0, res_diff = 0;
    std::vector<uint16_t> ga(m), gb(m);
    for (size_t r = 0; r < nr; ++r) {
      R.backends[r]->download(*xa[r], ga.data());
      R.backends[r]->download(*out[r], gb.data());
      out_diff = std::max(out_diff, max_abs_diff(ga, gb));
      R.backends[r]->download(*ra[r], ga.data());
      R.backends[r]->download(*rb[r], gb.data());
      res_diff = std::max(res_diff, max_abs_diff(ga, gb));
    }
    res.max_abs_out = out_diff;
    res.max_abs_residual = res_diff;
    // |out| and |residual| stay below 4 here, where a bf16 step is 2^-6: two steps, and more
    // where NCCL rounds each of several ranks' partial sums to bf16 on its way.
    double tol = 0x1p-5 * double(nr - 1);
    res.check = out_diff <= tol && res_diff <= tol ? "pass" : "FAIL";
  }

  const int iters = m <= (1u << 20) ? 200 : m <= (1u << 23) ? 50 : 10;
  const int calls = m <= (1u << 20) ? 20 : 5;
  dog.arm(where + ": (a) NCCL + add_rms_norm", 120);
  for (int i = 0; i < 5; ++i) run_a();
  res.a_us = time_eager(R, run_a, iters);
  if (fused && res.check == "pass") {
    dog.arm(where + ": (b) fused", 120);
    for (int i = 0; i < 5; ++i) run_b();
    res.b_us = time_eager(R, run_b, iters);
    dog.arm(where + ": (b) fused in CUDA graphs", 120);
    try {
      res.b_graph_us = time_graphs(R, run_b, calls, std::max(iters / calls, 4));
    } catch (const Error& e) {
      res.note = fmt::format("(b) in graphs: {}", e.what());
    }
  }
  if (*graph_a_ok) {
    dog.arm(where + ": (a) in CUDA graphs", 120);
    try {
      res.a_graph_us = time_graphs(R, run_a, calls, std::max(iters / calls, 4));
    } catch (const Error& e) {
      *graph_a_ok = false;  // not tried again: a failed capture may leave NCCL in a bad state
      res.note += fmt::format("{}(a) in graphs: {}", res.note.empty() ? "" : "; ", e.what());
    }
  }
  R.synchronize();
  return res;
}

std::string us(const std::optional<double>& v) {
  return v ? fmt::format("{:.1f}", *v) : "-";
}
std::string ratio(const std::optional<double>& a, const std::optional<double>& b) {
  return a && b ? fmt::format("{:.2f}x", *a / *b) : "-";
}
nlohmann::json opt(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

int run(int argc, char** argv) {
  std::string json_path;
  int want_ranks = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--ranks" && i + 1 < argc) {
      want_ranks = std::atoi(argv[++i]);
    } else {
      fmt::print(stderr, "usage: mtile_allreduce_figures [--json FILE] [--ranks N]\n");
      return 2;
    }
  }
  std::string why;
  if (!cuda::driver_available(&why)) throw Error(why);
  int devices = 0;
  MTILE_CU(cuDeviceGetCount, &devices);
  int nr = want_ranks > 0 ? want_ranks : devices;
  if (nr < 2 || nr > devices)
    throw Error(fmt::format("needs at least 2 CUDA devices (ranks {}), and this machine has {}", nr, devices));
  if (std::string no = nccl_unavailable_reason(); !no.empty()) throw Error(no);

  Watchdog dog;
  Context ctx;
  std::vector<Communicator> comms;  // destroyed before ctx's backends
  Ranks R{ctx, {}, {}, comms};
  for (int r = 0; r < nr; ++r) {
    R.backends.push_back(&ctx.backend(fmt::format("cuda:{}", r)));
    R.cuda.push_back(dynamic_cast<cuda::CudaBackend*>(R.backends.back()));
  }
  comms = Communicator::init_all(R.backends);
  Kernel add_norm = find_kernel("add_rms_norm"), fused;
  try {
    fused = find_kernel("allreduce_add_rms_norm");
  } catch (const Error& e) {
    fmt::print("no fused kernel, (b) not measured: {}\n", e.what());
  }
  fmt::print("{} ranks of {}; NCCL {}; bf16; times per call in us (max over ranks), issued from one thread\n", nr,
             R.backends[0]->device_name(), nccl_version());
  fmt::print("{:>5} {:>5} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>9} {:>9} {:>5}\n", "rows", "n", "(a) us", "(b) us",
             "(a)/(b)", "(a) graph", "(b) graph", "(a)/(b)", "out diff", "res diff", "check");
  std::vector<Result> results;
  bool graph_a_ok = true, all_pass = bool(fused);
  for (uint32_t n : {4096u, 8192u})
    for (uint32_t rows : {1u, 8u, 32u, 128u, 1024u, 8192u}) {
      Result r;
      try {
        r = measure(R, add_norm, fused, rows, n, &graph_a_ok, dog);
      } catch (const Error& e) {
        r.rows = rows;
        r.n = n;
        r.check = "ERROR";
        r.note = e.what();
      }
      all_pass &= r.check == "pass";
      auto diff = [](const std::optional<double>& d) { return d ? fmt::format("{:.2e}", *d) : "-"; };
      fmt::print("{:>5} {:>5} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>9} {:>9} {:>5}{}\n", rows, n, us(r.a_us),
                 us(r.b_us), ratio(r.a_us, r.b_us), us(r.a_graph_us), us(r.b_graph_us),
                 ratio(r.a_graph_us, r.b_graph_us), diff(r.max_abs_out), diff(r.max_abs_residual), r.check,
                 r.note.empty() ? "" : "  " + r.note);
      std::fflush(stdout);
      results.push_back(r);
    }
  if (!json_path.empty()) {
    nlohmann::json j;
    j["device"] = R.backends[0]->device_name();
    j["ranks"] = nr;
    j["nccl"] = nccl_version();
    j["dtype"] = "bf16";
    for (const Result& r : results)
      j["results"].push_back({{"rows", r.rows},
                              {"n", r.n},
                              {"bytes", r.bytes},
                              {"a_us", opt(r.a_us)},
                              {"b_us", opt(r.b_us)},
                              {"a_graph_us", opt(r.a_graph_us)},
                              {"b_graph_us", opt(r.b_graph_us)},
                              {"max_abs_out", opt(r.max_abs_out)},
                              {"max_abs_residual", opt(r.max_abs_residual)},
                              {"check", r.check},
                              {"note", r.note}});
    std::ofstream(json_path) << j.dump(2) << "\n";
  }
  if (!all_pass) fmt::print("not every shape passed its check: see the check column\n");
  return all_pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    fmt::print(stderr, "mtile_allreduce_figures: {}\n", e.what());
    return 2;
  }
}
