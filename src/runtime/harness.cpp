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
  if (!k.bytes.empty()) {
    rule::Bindings b = plan.resolved.bindings;
    b["dtype_bytes"] = storage_bytes(plan.dtype);
    return k.bytes.eval(b);
  }
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

CheckResult run_and_check(Context& ctx, Backend& backend, const Kernel& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts) {
  const KernelSpec& spec = k.spec();
  auto tol = spec.tolerance.find(dtype);
  if (spec.has_dtype(dtype) && tol == spec.tolerance.end())
    throw Error(fmt::format("kernel {}: no tolerance for {}", k.name(), type_name(dtype)));
  // The contract is checked here, before any buffer exists.
  auto plan = ctx.plan(backend, k, dtype, shape, opts.launch);
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
  // The check holds every tensor on the host in float64 and in its storage format, twice.
  uint64_t host_bytes = 0;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].kind == ir::ParamKind::Tensor)
      host_bytes += plan->elements[i] * (8 + 2 * storage_bytes(params[i].elem));
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
  std::vector<Buffer> buffers(params.size());
  std::vector<Buffer*> args(params.size(), nullptr);
  struct Releaser {
    Backend& b;
    std::vector<Buffer>& bufs;
    ~Releaser() {
      for (Buffer& x : bufs)
        if (x.owner) try {
            b.release(x);
          } catch (...) {
          }
    }
  } releaser{backend, buffers};

  std::mt19937_64 rng(opts.seed);
  LaunchOptions launch = opts.launch;
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind == ir::ParamKind::Scalar) {
      // Drawn like an input (unless the caller gave it), as the kernel sees it.
      auto given = launch.scalars.find(p.name);
      double v;
      if (given != launch.scalars.end()) {
        v = given->second;
      } else {
        auto init_it = spec.inits.find(p.name);
        Init init = init_it == spec.inits.end() ? Init{} : init_it->second;
        v = init.kind == Init::Kind::Constant ? init.lo : std::uniform_real_distribution<double>(init.lo, init.hi)(rng);
        v = is_float(p.elem) ? round_to(p.elem, static_cast<float>(v)) : std::round(v);
        launch.scalars[p.name] = v;
      }
      host.at(i) = {v};
      continue;
    }
    if (p.kind != ir::ParamKind::Tensor) continue;
    uint64_t count = plan->elements[i];
    buffers[i] = backend.alloc(p.elem, count);
    args[i] = &buffers[i];
    std::vector<double>& values = host.at(i);
    values.assign(count, 0.0);
    std::vector<uint8_t> bytes;
    if (p.role == ir::Role::Out) {
      bytes = poisoned(p.elem, count);
    } else {
      auto init_it = spec.inits.find(p.name);
      Init init = init_it == spec.inits.end() ? Init{} : init_it->second;
      std::uniform_real_distribution<double> dist(init.lo, init.hi);
      for (double& v : values) v = init.kind == Init::Kind::Constant ? init.lo : dist(rng);
      bytes = encode(p.elem, values);
      for (size_t e = 0; e < count; ++e) values[e] = decode(p.elem, bytes, e);  // what the kernel sees
    }
    backend.upload(buffers[i], bytes.data());
  }

  // The checked launch comes first, so in-place (InOut) kernels are checked on fresh inputs.
  backend.synchronize();
  auto t0 = std::chrono::steady_clock::now();
  ctx.run(backend, *plan, args, launch);
  backend.synchronize();
  res.first_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.seconds = res.first_seconds;

  spec.reference(shape, host);
  res.passed = true;
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor || p.role == ir::Role::In || spec.scratch.count(p.name)) continue;
    std::vector<uint8_t> bytes(buffers[i].bytes());
    backend.download(buffers[i], bytes.data());
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

  for (int i = 0; i < opts.warmup_runs; ++i) ctx.run(backend, *plan, args, launch);
  if (opts.timed_runs > 0) {
    auto one = [&] { ctx.run(backend, *plan, args, launch); };
    std::vector<double> ms;
    for (int i = 0; i < opts.timed_runs; ++i)
      ms.push_back(opts.measure_ms ? opts.measure_ms(one) : backend.measure_ms(one));
    std::sort(ms.begin(), ms.end());
    res.seconds = ms[ms.size() / 2] / 1e3;
    res.timed_runs = opts.timed_runs;
  }
  return res;
}

}  // namespace mtile
