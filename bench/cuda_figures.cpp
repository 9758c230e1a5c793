// The CUDA backend's figures for one device, in one run: copy bandwidth, achieved bandwidth of
// the norm kernels (checked against the float64 reference first), host overhead of a cached
// launch against a raw cuLaunchKernel, cold compile and disk-cache warm start, graph replay.
// Run it twice with the same MTILE_CACHE_DIR: the second run's "compile" line is the warm start.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "backends/cuda/cuda_backend.hpp"
#include "mtile/harness.hpp"

using namespace mtile;
using Clock = std::chrono::steady_clock;

namespace {

double since_us(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Args {
  std::vector<Buffer> buffers;
  std::vector<Buffer*> ptrs;
};

Args make_args(cuda::CudaBackend& b, const Kernel& k, ScalarType t, const Shape& s) {
  auto plan = Context::global().plan(b, k, t, s);
  const auto& params = plan->params();
  Args a;
  a.buffers.resize(params.size());
  a.ptrs.assign(params.size(), nullptr);
  std::mt19937 rng(7);
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor) continue;
    uint64_t n = plan->elements[i];
    a.buffers[i] = b.alloc(p.elem, n);
    std::vector<uint8_t> bytes(a.buffers[i].bytes());
    for (auto& x : bytes) x = static_cast<uint8_t>(rng() & 0x3f);  // small finite values
    if (p.name == "eps_buf") {
      float eps = 1e-6f;
      std::memcpy(bytes.data(), &eps, 4);
    }
    b.upload(a.buffers[i], bytes.data());
    a.ptrs[i] = &a.buffers[i];
  }
  return a;
}

void bandwidth(cuda::CudaBackend& b, const std::string& name, const Shape& s, double copy_gbs, Buffer& flush) {
  Kernel k = find_kernel(name);
  CheckResult check = run_and_check(b, k, ScalarType::bf16, s);
  Args a = make_args(b, k, ScalarType::bf16, s);
  launch(b, k, ScalarType::bf16, s, a.ptrs);
  std::vector<double> ms;
  for (int i = 0; i < 30; ++i) {
    b.fill_bytes(flush, static_cast<uint8_t>(i));  // evict L2 (50 MB) between timed runs
    ms.push_back(b.time_ms([&] { launch(b, k, ScalarType::bf16, s, a.ptrs); }));
  }
  std::sort(ms.begin(), ms.end());
  double med = ms[ms.size() / 2], gbs = check.bytes / (med * 1e-3) / 1e9;
  fmt::print("{:<24} bf16 {:<18} check {} (rel_l2 {:.2e})  median {:8.2f} us  {:7.1f} GB/s  {:5.1f}% of copy\n", name,
             shape_text(s), check.passed ? "PASS" : "FAIL", check.outputs[0].rel_l2, med * 1e3, gbs,
             100 * gbs / copy_gbs);
  for (Buffer& x : a.buffers)
    if (x.owner) b.release(x);
}

void host_overhead(cuda::CudaBackend& b) {
  Kernel k = find_kernel("vector_add");
  Shape s{{"n", 256}};
  Args a = make_args(b, k, ScalarType::f32, s);
  launch(b, k, ScalarType::f32, s, a.ptrs);  // compiles, caches the executable
  b.synchronize();
  auto plan = Context::global().plan(b, k, ScalarType::f32, s);
  auto exe = plan->exe;
  cuda::CUfunction f = cuda::CudaBackend::cu_function(*exe);
  cuda::CUdeviceptr p0 = a.buffers[0].handle, p1 = a.buffers[1].handle, p2 = a.buffers[2].handle;
  uint32_t n = 256;
  void* raw_args[] = {&p0, &p1, &p2, &n};
  Geometry g = plan->geometry();
  const int batch = 200, batches = 50;
  auto per_call = [&](const std::function<void()>& one) {
    std::vector<double> us;
    for (int r = 0; r < batches; ++r) {
      b.synchronize();
      auto t0 = Clock::now();
      for (int i = 0; i < batch; ++i) one();
      us.push_back(since_us(t0) / batch);
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  double raw = per_call([&] { b.launch_raw(f, g, raw_args); });
  std::vector<uint64_t> cvals = {0, 0, 0, n};
  double run = per_call([&] { b.run(*exe, g, a.ptrs, cvals); });
  double full = per_call([&] { launch(b, k, ScalarType::f32, s, a.ptrs); });
  b.synchronize();
  fmt::print(
      "host overhead per launch (median of {} batches of {}): raw cuLaunchKernel {:.2f} us, "
      "Backend::run {:.2f} us (+{:.2f}), mtile::launch with contract checks {:.2f} us (+{:.2f})\n",
      batches, batch, raw, run, run - raw, full, full - raw);
  for (Buffer& x : a.buffers)
    if (x.owner) b.release(x);
}

void graph_replay(cuda::CudaBackend& b, const std::string& name) {
  Kernel k = find_kernel(name);
  Shape s{{"rows", 1}, {"n", 4096}};
  Args a = make_args(b, k, ScalarType::bf16, s);
  launch(b, k, ScalarType::bf16, s, a.ptrs);
  b.synchronize();
  const int per_graph = 20;
  cuda::CudaGraph graph = b.capture([&] {
    for (int i = 0; i < per_graph; ++i) launch(b, k, ScalarType::bf16, s, a.ptrs);
  });
  graph.replay();
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) ms.push_back(b.time_ms([&] { graph.replay(); }));
  std::sort(ms.begin(), ms.end());
  fmt::print("{} bf16 rows=1,n=4096 in a CUDA graph: {:.2f} us per launch ({} launches a graph)\n", name,
             ms[ms.size() / 2] * 1e3 / per_graph, per_graph);
  for (Buffer& x : a.buffers)
    if (x.owner) b.release(x);
}

}  // namespace

int main() {
  try {
    auto t0 = Clock::now();
    cuda::CudaBackend b(0);
    double open_us = since_us(t0);
    fmt::print("device {}  (context and stream opened in {:.0f} ms)\n", b.device_name(), open_us / 1e3);
    // Compile (cold, or warm from the disk cache if a previous run filled MTILE_CACHE_DIR).
    Kernel seed = find_kernel("ffai_rms_norm_residual");
    Shape s{{"rows", 16384}, {"n", 4096}};
    auto t1 = Clock::now();
    Resolved r = resolve(seed.spec(), s, b.target());
    auto lowered = Context::global().lowered(seed, ScalarType::bf16, r.config, b.target(), r.constexprs);
    double trace_us = since_us(t1);
    auto t2 = Clock::now();
    b.prepare(lowered->fn);
    double prep_us = since_us(t2);
    cuda::CacheStats st = b.cache_stats();
    fmt::print(
        "compile ffai_rms_norm_residual<bf16>: trace+passes {:.2f} ms, codegen+{}+load {:.2f} ms "
        "(nvrtc compiles {}, disk hits {})\n",
        trace_us / 1e3, st.compiles ? "NVRTC" : "disk cache", prep_us / 1e3, st.compiles, st.disk_hits);
    cuda::CopyBandwidth copy = b.measure_copy_bandwidth(512ull << 20, 20);
    fmt::print("device-to-device copy 512 MiB: {:.3f} ms, {:.1f} GB/s (read + write)\n", copy.median_ms, copy.gb_per_s);
    Buffer flush = b.alloc(ScalarType::f32, 64ull << 20);  // 256 MiB
    bandwidth(b, "ffai_rms_norm_residual", {{"rows", 16384}, {"n", 4096}}, copy.gb_per_s, flush);
    bandwidth(b, "ffai_rms_norm_residual", {{"rows", 2048}, {"n", 4096}}, copy.gb_per_s, flush);
    bandwidth(b, "mt_rms_norm_wide", {{"rows", 4096}, {"n", 8192}}, copy.gb_per_s, flush);
    bandwidth(b, "mt_rms_norm_wide", {{"rows", 2048}, {"n", 16384}}, copy.gb_per_s, flush);
    bandwidth(b, "mt_rms_norm", {{"rows", 16384}, {"n", 4096}}, copy.gb_per_s, flush);
    for (const Shape& s : find_kernel("rms_norm_residual")->bench_shapes)
      if (uint64_t(s.at("rows")) * s.at("n") >= (1u << 23)) bandwidth(b, "rms_norm_residual", s, copy.gb_per_s, flush);
    b.release(flush);
    host_overhead(b);
    graph_replay(b, "ffai_rms_norm_residual");
    graph_replay(b, "rms_norm_residual");
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "mtile_cuda_figures: {}\n", e.what());
    return 2;
  }
}
