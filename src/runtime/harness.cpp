#include "mtile/harness.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "ir/eval.hpp"

namespace mtile {
namespace {

// Host copy of a tensor in its storage format.
std::vector<uint8_t> encode(ScalarType t, const std::vector<double>& v) {
  std::vector<uint8_t> bytes(v.size() * storage_bytes(t));
  for (size_t i = 0; i < v.size(); ++i) {
    ir::Scalar s;
    if (t == ScalarType::u32)
      s.u = static_cast<uint32_t>(v[i]);
    else if (t == ScalarType::i32)
      s.i = static_cast<int32_t>(v[i]);
    else
      s.f = static_cast<float>(v[i]);
    ir::store_element(t, bytes.data(), i, s);
  }
  return bytes;
}

double decode(ScalarType t, const std::vector<uint8_t>& bytes, size_t i) {
  ir::Scalar s = ir::load_element(t, bytes.data(), i);
  if (t == ScalarType::u32) return s.u;
  if (t == ScalarType::i32) return s.i;
  return s.f;
}

bool is_poison(ScalarType t, const std::vector<uint8_t>& bytes, size_t i) {
  size_t w = storage_bytes(t);
  for (size_t b = 0; b < w; ++b)
    if (bytes[i * w + b] != 0xff) return false;
  return true;
}

}  // namespace

std::string CheckResult::summary() const {
  std::string errs;
  for (const OutputCheck& o : outputs) {
    errs += fmt::format("{}: rel_l2 {:.3e} max_abs {:.3e}", o.param, o.rel_l2, o.max_abs);
    if (o.unwritten) errs += fmt::format(" UNWRITTEN {}", o.unwritten);
    if (o.non_finite) errs += fmt::format(" NON-FINITE {}", o.non_finite);
  }
  return fmt::format("{:<24} {:<5} {:<22} {}  (tol {:.0e}/{:.0e})  {}  {:.3f} ms", kernel, type_name(dtype),
                     shape_text(shape), errs, tolerance.rel_l2, tolerance.max_abs, passed ? "PASS" : "FAIL",
                     seconds * 1e3);
}

CheckResult run_and_check(Backend& backend, const KernelSpec& k, ScalarType dtype, const Shape& shape,
                          const CheckOptions& opts) {
  CheckResult res;
  res.kernel = k.name();
  res.dtype = dtype;
  res.shape = shape;
  res.backend = backend.name();
  validate_shape(k, shape);
  res.geometry = opts.launch.geometry ? *opts.launch.geometry : k.dispatch(shape);
  check_contract(k, shape, res.geometry);  // before any allocation
  auto it = k.tolerance.find(dtype);
  if (it == k.tolerance.end()) throw Error(fmt::format("kernel {}: no tolerance for {}", k.name(), type_name(dtype)));
  res.tolerance = it->second;
  res.bytes = k.bytes(shape, dtype);

  auto fn = lowered_kernel(k, dtype, {});
  const auto& params = fn->params;
  std::mt19937_64 rng(opts.seed);
  HostTensors host(params.size());
  std::vector<Buffer> buffers(params.size());
  std::vector<Buffer*> args(params.size(), nullptr);
  struct Releaser {
    Backend& b;
    std::vector<Buffer>& bufs;
    ~Releaser() {
      for (Buffer& x : bufs)
        if (x.owner) b.release(x);
    }
  } releaser{backend, buffers};

  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor) continue;
    uint64_t count = k.elements(p.name, shape);
    host[i].assign(count, 0.0);
    buffers[i] = backend.alloc(p.elem, count);
    args[i] = &buffers[i];
    std::vector<uint8_t> bytes;
    if (p.role == ir::Role::Out) {
      bytes.assign(count * storage_bytes(p.elem), 0xff);
    } else {
      auto init_it = k.inits.find(p.name);
      Init init = init_it == k.inits.end() ? Init{} : init_it->second;
      std::uniform_real_distribution<double> dist(init.lo, init.hi);
      for (double& v : host[i]) v = init.kind == Init::Kind::Constant ? init.lo : dist(rng);
      bytes = encode(p.elem, host[i]);
      for (size_t e = 0; e < count; ++e) host[i][e] = decode(p.elem, bytes, e);  // what the kernel sees
    }
    backend.upload(buffers[i], bytes.data());
  }

  auto t0 = std::chrono::steady_clock::now();
  launch(backend, k, dtype, shape, args, opts.launch);
  backend.synchronize();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (opts.timed_runs > 0) {
    std::vector<double> ms;
    for (int i = 0; i < opts.timed_runs; ++i)
      ms.push_back(backend.measure_ms([&] { launch(backend, k, dtype, shape, args, opts.launch); }));
    std::sort(ms.begin(), ms.end());
    res.seconds = ms[ms.size() / 2] / 1e3;
  }

  k.reference(shape, host);
  res.passed = true;
  for (size_t i = 0; i < params.size(); ++i) {
    const ir::Param& p = params[i];
    if (p.kind != ir::ParamKind::Tensor || p.role == ir::Role::In) continue;
    std::vector<uint8_t> bytes(buffers[i].bytes());
    backend.download(buffers[i], bytes.data());
    OutputCheck o;
    o.param = p.name;
    double diff2 = 0, ref2 = 0;
    for (size_t e = 0; e < host[i].size(); ++e) {
      if (is_poison(p.elem, bytes, e)) {
        ++o.unwritten;
        continue;
      }
      double got = decode(p.elem, bytes, e), want = host[i][e];
      if (!std::isfinite(got)) {
        ++o.non_finite;
        continue;
      }
      diff2 += (got - want) * (got - want);
      ref2 += want * want;
      o.max_abs = std::max(o.max_abs, std::fabs(got - want));
    }
    o.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
    if (opts.keep_outputs) {
      std::vector<double>& kept = res.output_values.emplace_back(host[i].size());
      for (size_t e = 0; e < kept.size(); ++e) kept[e] = decode(p.elem, bytes, e);
    }
    res.passed &=
        o.unwritten == 0 && o.non_finite == 0 && o.rel_l2 <= res.tolerance.rel_l2 && o.max_abs <= res.tolerance.max_abs;
    res.outputs.push_back(o);
  }
  return res;
}

}  // namespace mtile
