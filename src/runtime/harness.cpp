#include "mtile/harness.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "ir/eval.hpp"
#include "runtime/host_memory.hpp"

namespace mtile {
namespace {

// Host copy of a tensor in its storage format. Integers are truncated toward zero (and wrap
// into their width), so the values the reference reads back are the kernel's.
std::vector<uint8_t> encode(ScalarType t, const std::vector<double>& v) {
  std::vector<uint8_t> bytes(v.size() * storage_bytes(t));
  for (size_t i = 0; i < v.size(); ++i) {
    ir::Scalar s;
    s.u64 = 0;
    if (is_integer(t))
      s.i64 = static_cast<int64_t>(v[i]);  // the low 32 bits are the u32/i32 member on the host
    else
      s.f = static_cast<float>(v[i]);
    ir::store_element(t, bytes.data(), i, s);
  }
  return bytes;
}

double decode(ScalarType t, const std::vector<uint8_t>& bytes, size_t i) {
  ir::Scalar s = ir::load_element(t, bytes.data(), i);
  switch (value_type(t)) {
    case ScalarType::u32: return s.u;
    case ScalarType::i32: return s.i;
    case ScalarType::u64: return static_cast<double>(s.u64);
    case ScalarType::i64: return static_cast<double>(s.i64);
    default: return s.f;
  }
}

// An element's place in its type's order of representable values, so that the distance of two
// places counts the values between them: floats by sign and magnitude of their bits (adjacent
// magnitudes are adjacent values), integers by value.
int64_t grid_place(ScalarType t, const std::vector<uint8_t>& bytes, size_t i) {
  if (!is_float(t)) return static_cast<int64_t>(decode(t, bytes, i));
  size_t w = storage_bytes(t);
  uint32_t bits = 0;
  std::memcpy(&bits, &bytes[i * w], w);
  uint32_t sign = 1u << (8 * w - 1);
  int64_t magnitude = bits & (sign - 1);
  return bits & sign ? -magnitude : magnitude;
}

// Signalling NaNs with a payload (integers: a pattern): no arithmetic or conversion produces them,
// so an element that still holds one was never written, and a NaN the kernel wrote is a NaN.
// 8-bit integers have no such pattern: a written 0xa5 reads as unwritten there.
uint64_t poison_bits(ScalarType t) {
  switch (t) {
    case ScalarType::f32: return 0x7fa5a5a5u;
    case ScalarType::f16: return 0x7d5au;
    case ScalarType::bf16: return 0x7fa5u;
    case ScalarType::f8e4m3: return 0xffu;  // its NaN of negative sign: a -NaN written reads as unwritten
    case ScalarType::f8e5m2: return 0x7du;  // a signalling NaN
    default: return 0xa5a5a5a5a5a5a5a5ull;
  }
}

std::vector<uint8_t> poisoned(ScalarType t, uint64_t count) {
  size_t w = storage_bytes(t);
  uint64_t bits = poison_bits(t);
  std::vector<uint8_t> bytes(count * w);
  for (uint64_t i = 0; i < count; ++i) std::memcpy(&bytes[i * w], &bits, w);  // little-endian: the low bytes
  return bytes;
}

bool is_poison(ScalarType t, const std::vector<uint8_t>& bytes, size_t i) {
  size_t w = storage_bytes(t);
  uint64_t bits = 0, want = poison_bits(t);
  std::memcpy(&bits, &bytes[i * w], w);
  return w == 8 ? bits == want : bits == (want & ((uint64_t{1} << (8 * w)) - 1));
}

}  // namespace

uint64_t traffic_bytes(const LaunchPlan& plan) {
  const KernelSpec& k = plan.kernel.spec();
  if (!k.bytes.empty()) return k.bytes.eval(plan.resolved.bindings);  // dtype_bytes among them
  uint64_t bytes = 0;
  const auto& params = plan.params();
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor)
      bytes += plan.elements[i] * storage_bytes(params[i].elem) * (params[i].role == ir::Role::InOut ? 2 : 1);
  return bytes;
}

uint64_t work_flops(const LaunchPlan& plan) {
  const KernelSpec& k = plan.kernel.spec();
  return k.flops.empty() ? 0 : k.flops.eval(plan.resolved.bindings);
}

std::string CheckResult::summary() const {
  std::vector<std::string> errs;
  for (const OutputCheck& o : outputs) {
    std::string e = fmt::format("{}: rel_l2 {:.3e} max_abs {:.3e}", o.param, o.rel_l2, o.max_abs);
    if (o.tolerance.max_steps != UINT64_MAX) e += fmt::format(" steps {}", o.max_steps);
    if (o.tolerance.rel_l2 != tolerance.rel_l2 || o.tolerance.max_abs != tolerance.max_abs ||
        o.tolerance.max_steps != tolerance.max_steps)
      e += fmt::format(" (own tol {:.0e}/{:.0e}{})", o.tolerance.rel_l2, o.tolerance.max_abs,
                       o.tolerance.max_steps == UINT64_MAX ? "" : fmt::format("/{} steps", o.tolerance.max_steps));
    if (o.unwritten) e += fmt::format(" UNWRITTEN {}", o.unwritten);
    if (o.nan) e += fmt::format(" NaN {}", o.nan);
    if (o.inf) e += fmt::format(" INF {}", o.inf);
    errs.push_back(e);
  }
  return fmt::format("{:<24} {:<5} {:<22} {}  (tol {:.0e}/{:.0e})  {}  {:.3f} ms", kernel, type_name(dtype),
                     shape_text(shape), fmt::join(errs, "; "), tolerance.rel_l2, tolerance.max_abs,
                     passed ? "PASS" : "FAIL", seconds * 1e3);
}

CheckResult run_and_check(Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts) {
  return run_and_check(Context::global(), backend, k, dtype, shape, opts);
}

namespace {

// The backends of a check's ranks: one for an ordinary kernel; for a collective one (ranks =
// the shape's dim), the CPU engine for every simulated rank, or CUDA devices 0..ranks - 1.
std::vector<Backend*> rank_backends(Context& ctx, Backend& backend, const KernelSpec& spec, const Shape& shape) {
  if (spec.symmetric.empty()) return {&backend};
  uint32_t ranks = shape.at("ranks");
  if (ranks == 0) throw Error(fmt::format("kernel {}: ranks=0 (shape {})", spec.name(), shape_text(shape)));
  if (backend.name() == "cpu") return std::vector<Backend*>(ranks, &backend);
  std::vector<Backend*> out;
  for (uint32_t r = 0; r < ranks; ++r) {
    try {
      out.push_back(&ctx.backend(fmt::format("{}:{}", backend.name(), r)));
    } catch (const Error& e) {
      throw Error(fmt::format("kernel {}: shape {} runs one rank a device, and device {} can't be opened: {}",
                              spec.name(), shape_text(shape), r, e.what()));
    }
  }
  return out;
}

}  // namespace

std::string ranks_unavailable(Context& ctx, Backend& backend, const Kernel& k, const Shape& shape) {
  try {
    rank_backends(ctx, backend, k.spec(), shape);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

CheckResult run_and_check(Context& ctx, Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts) {
  const KernelSpec& spec = k.spec();
  auto tol = spec.tolerance.find(dtype);
  if (spec.has_dtype(dtype) && tol == spec.tolerance.end())
    throw Error(fmt::format("kernel {}: no tolerance for {}", k.name(), type_name(dtype)));
  // The contract is checked here, before any buffer exists (on rank 0's backend: `backend` itself
  // but for a collective kernel on CUDA, whose rank 0 is cuda:0).
  std::vector<Backend*> ranks = rank_backends(ctx, backend, spec, shape);
  auto plan = ctx.plan(*ranks[0], k, dtype, shape, opts.launch);
  const size_t nranks = ranks.size();
  CheckResult res;
  res.kernel = k.name();
  res.dtype = dtype;
  res.shape = shape;
  res.config = plan->resolved.config;
  res.backend = backend.name();
  res.geometry = plan->geometry();
  res.tolerance = tol->second;
  res.bytes = traffic_bytes(*plan);
  res.flops = work_flops(*plan);

  const auto& params = plan->params();
  auto symmetric = [&](size_t i) { return spec.symmetric.count(params[i].name) > 0; };
  // Elements of one rank's part of tensor i: its own tensor, or its slice of a symmetric one.
  auto part = [&](size_t i) { return symmetric(i) ? plan->elements[i] / nranks : plan->elements[i]; };
  // The check holds every tensor on the host in float64 and in its storage format, twice.
  uint64_t host_bytes = 0;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor)
      host_bytes += nranks * part(i) * (8 + 2 * storage_bytes(params[i].elem));
  if (host_bytes > host_memory_bytes() / 2)
    throw DeviceError(
        fmt::format("kernel {}: checking shape {} needs {:.1f} GB of host memory, more than half of this "
                    "host's {:.1f} GB",
                    k.name(), shape_text(shape), host_bytes / 1e9, host_memory_bytes() / 1e9));
  std::vector<std::string> names;  // tensors and scalars, which references read by name
  for (const ir::Param& p : params) names.push_back(p.kind == ir::ParamKind::Constexpr ? "" : p.name);
  std::vector<ScalarType> elems;
  for (const ir::Param& p : params) elems.push_back(p.elem);
  HostTensors host(k.name(), dtype, names, elems);

  // Memory: each rank's own buffers, and one symmetric range per symmetric tensor.
  std::vector<std::vector<Buffer>> buffers(nranks, std::vector<Buffer>(params.size()));
  std::vector<SymmetricMemory> shared(params.size());
  struct Releaser {
    std::vector<Backend*>& ranks;
    std::vector<std::vector<Buffer>>& bufs;
    std::vector<SymmetricMemory>& shared;
    ~Releaser() {
      for (size_t r = 0; r < bufs.size(); ++r)
        for (Buffer& x : bufs[r])
          if (x.owner) try {
              ranks[r]->release(x);
            } catch (...) {
            }
      for (SymmetricMemory& m : shared)
        if (!m.views.empty()) try {
            ranks[0]->release_symmetric(m);
          } catch (...) {
          }
    }
  } releaser{ranks, buffers, shared};
  LaunchOptions launch = opts.launch;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor && symmetric(i)) {
      shared[i] = alloc_symmetric(ranks, params[i].elem, part(i));
      launch.config[params[i].name + "_slot"] = static_cast<uint32_t>(shared[i].slot);
    }
  // Each rank's plan, with the symmetric allocations' slots (the same plan where they match).
  std::vector<std::shared_ptr<const LaunchPlan>> plans(nranks, plan);
  std::vector<LaunchOptions> launches(nranks, launch);
  for (size_t r = 0; r < nranks; ++r) {
    if (!spec.symmetric.empty()) {
      plans[r] = ctx.plan(*ranks[r], k, dtype, shape, launch);
      launches[r].scalars["rank"] = static_cast<double>(r);
    }
  }
  if (!spec.symmetric.empty()) res.config = plans[0]->resolved.config;

  std::mt19937_64 rng(opts.seed);
  std::vector<std::vector<Buffer*>> args(nranks, std::vector<Buffer*>(params.size(), nullptr));
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind == ir::ParamKind::Scalar) {
      // Drawn like an input (unless the caller gave it), as the kernel sees it.
      auto given = launches[0].scalars.find(p.name);
      double v;
      if (given != launches[0].scalars.end()) {
        v = given->second;
      } else {
        auto init_it = spec.inits.find(p.name);
        Init init = init_it == spec.inits.end() ? Init{} : init_it->second;
        v = init.kind == Init::Kind::Constant ? init.lo : std::uniform_real_distribution<double>(init.lo, init.hi)(rng);
        v = is_float(p.elem) ? round_to(p.elem, static_cast<float>(v)) : std::round(v);
        for (LaunchOptions& l : launches) l.scalars[p.name] = v;
      }
      host.at(i) = {v};
      continue;
    }
    if (p.kind != ir::ParamKind::Tensor) continue;
    uint64_t count = part(i);
    std::vector<double>& values = host.at(i);
    values.assign(nranks * count, 0.0);
    std::vector<uint8_t> bytes;
    if (p.role == ir::Role::Out) {
      bytes = poisoned(p.elem, nranks * count);
    } else {
      auto init_it = spec.inits.find(p.name);
      Init init = init_it == spec.inits.end() ? Init{} : init_it->second;
      std::uniform_real_distribution<double> dist(init.lo, init.hi);
      for (double& v : values) v = init.kind == Init::Kind::Constant ? init.lo : dist(rng);
      bytes = encode(p.elem, values);
      for (size_t e = 0; e < values.size(); ++e) values[e] = decode(p.elem, bytes, e);  // what the kernel sees
    }
    size_t w = storage_bytes(p.elem);
    if (symmetric(i)) {  // the ranks' slices, `slot` elements apart
      SymmetricMemory& m = shared[i];
      std::vector<uint8_t> image(m.views[0].bytes(), 0);
      for (size_t r = 0; r < nranks; ++r) std::memcpy(&image[r * m.slot * w], &bytes[r * count * w], count * w);
      ranks[0]->upload(m.views[0], image.data());
      for (size_t r = 0; r < nranks; ++r) args[r][i] = &m.views[r];
      continue;
    }
    for (size_t r = 0; r < nranks; ++r) {
      buffers[r][i] = ranks[r]->alloc(p.elem, count);
      args[r][i] = &buffers[r][i];
      ranks[r]->upload(buffers[r][i], &bytes[r * count * w]);
    }
  }

  // The checked launch comes first, so in-place (InOut) kernels are checked on fresh inputs.
  auto run_all = [&] {
    if (spec.symmetric.empty())
      ctx.run(backend, *plan, args[0], launches[0]);
    else
      run_collective(ctx, ranks, plans, args, launches);
  };
  auto sync_all = [&] {
    for (Backend* b : ranks) b->synchronize();
  };
  sync_all();
  auto t0 = std::chrono::steady_clock::now();
  run_all();
  sync_all();
  res.first_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.seconds = res.first_seconds;

  spec.reference(shape, host);
  res.passed = true;
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor || p.role == ir::Role::In || spec.scratch.count(p.name)) continue;
    size_t w = storage_bytes(p.elem);
    uint64_t count = part(i);
    std::vector<uint8_t> bytes(nranks * count * w);
    if (symmetric(i)) {
      const SymmetricMemory& m = shared[i];
      std::vector<uint8_t> image(m.views[0].bytes());
      ranks[0]->download(m.views[0], image.data());
      for (size_t r = 0; r < nranks; ++r) std::memcpy(&bytes[r * count * w], &image[r * m.slot * w], count * w);
    } else {
      for (size_t r = 0; r < nranks; ++r) ranks[r]->download(buffers[r][i], &bytes[r * count * w]);
    }
    const std::vector<double>& want = host.at(i);
    const std::vector<uint8_t> want_bytes = encode(p.elem, want);  // the reference rounded to the type
    OutputCheck o;
    o.param = p.name;
    auto own = spec.output_tolerance.find(p.name);
    o.tolerance = own == spec.output_tolerance.end() ? res.tolerance : own->second;
    double diff2 = 0, ref2 = 0;
    for (size_t e = 0; e < want.size(); ++e) {
      if (p.role == ir::Role::Out && is_poison(p.elem, bytes, e)) {
        ++o.unwritten;
        continue;
      }
      double got = decode(p.elem, bytes, e);
      if (std::isnan(got)) {
        ++o.nan;
        continue;
      }
      if (std::isinf(got)) {
        ++o.inf;
        continue;
      }
      diff2 += (got - want[e]) * (got - want[e]);
      ref2 += want[e] * want[e];
      o.max_abs = std::max(o.max_abs, std::fabs(got - want[e]));
      int64_t steps = grid_place(p.elem, bytes, e) - grid_place(p.elem, want_bytes, e);
      o.max_steps = std::max(o.max_steps, static_cast<uint64_t>(steps < 0 ? -steps : steps));
    }
    o.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
    if (opts.keep_outputs) {
      std::vector<double>& kept = res.output_values.emplace_back(want.size());
      for (size_t e = 0; e < kept.size(); ++e) kept[e] = decode(p.elem, bytes, e);
    }
    o.passed = o.unwritten == 0 && o.nan == 0 && o.inf == 0 && o.rel_l2 <= o.tolerance.rel_l2 &&
               o.max_abs <= o.tolerance.max_abs && o.max_steps <= o.tolerance.max_steps;
    res.passed &= o.passed;
    res.outputs.push_back(o);
  }

  for (int i = 0; i < opts.warmup_runs; ++i) run_all();
  if (opts.timed_runs > 0) {
    std::vector<double> ms;
    for (int i = 0; i < opts.timed_runs; ++i)
      if (spec.symmetric.empty())
        ms.push_back(opts.measure_ms ? opts.measure_ms(run_all) : backend.measure_ms(run_all));
      else  // every rank's work: the wall clock until the last rank is done
        ms.push_back([&] {
          auto start = std::chrono::steady_clock::now();
          run_all();
          sync_all();
          return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        }());
    std::sort(ms.begin(), ms.end());
    res.seconds = ms[ms.size() / 2] / 1e3;
    res.timed_runs = opts.timed_runs;
  }
  return res;
}

}  // namespace mtile
