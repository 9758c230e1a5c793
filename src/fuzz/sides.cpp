// Running a fuzzed program two ways, and comparing what they wrote; see sides.hpp.
#include "fuzz/sides.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "backends/cpu/engine.hpp"
#include "backends/cuda/cuda_backend.hpp"
#include "mtile/compile.hpp"
#include "passes/pipeline.hpp"

namespace mtile::fuzz {
namespace {

using ST = ScalarType;

uint32_t float_for(std::mt19937_64& rng) {
  static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-45f, 3.4e38f, 65504.0f, 1.0f};
  switch (rng() % 10) {
    case 0: return float_bits(special[rng() % std::size(special)]);
    case 1:
    case 2:
    case 3:
    case 4: return float_bits(static_cast<float>(static_cast<int>(rng() % 257) - 128) / 8.0f);
    default: {  // sign, an exponent of 2^-24 .. 2^24, a random mantissa
      float m = 1.0f + static_cast<float>(rng() % (1u << 23)) * 0x1.0p-23f;
      return float_bits((rng() & 1 ? -1.0f : 1.0f) * std::ldexp(m, static_cast<int>(rng() % 49) - 24));
    }
  }
}

void fill(const TensorDesc& t, uint64_t count, std::mt19937_64& rng, Bytes& out) {
  out.resize(count * storage_bytes(t.elem));
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t v = 0;
    switch (t.elem) {
      case ST::u32: v = rng() % 3 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 64); break;
      case ST::i32:
        v = rng() % 3 == 0 ? static_cast<uint32_t>(rng())
                           : static_cast<uint32_t>(static_cast<int32_t>(rng() % 129) - 64);
        break;
      case ST::f32: v = float_for(rng); break;
      case ST::f16: v = f32_to_f16_bits(bits_float(float_for(rng))); break;
      case ST::bf16: v = f32_to_bf16_bits(bits_float(float_for(rng))); break;
      case ST::u64:
      case ST::i64: v = rng() % 3 == 0 ? rng() : static_cast<uint64_t>(static_cast<int64_t>(rng() % 129) - 64); break;
      case ST::f8e4m3: v = rng() % 2 ? f32_to_f8e4m3_bits(bits_float(float_for(rng))) : rng() % 256; break;
      case ST::f8e5m2: v = rng() % 2 ? f32_to_f8e5m2_bits(bits_float(float_for(rng))) : rng() % 256; break;
      default: v = rng(); break;  // 8- and 16-bit integers: any bits
    }
    std::memcpy(out.data() + i * storage_bytes(t.elem), &v, storage_bytes(t.elem));
  }
}

uint64_t raw(ST t, const Bytes& d, uint64_t i) {
  uint64_t v = 0;
  std::memcpy(&v, d.data() + i * storage_bytes(t), storage_bytes(t));
  return v;
}

float as_float(ST t, uint64_t bits) {
  switch (t) {
    case ST::f16: return f16_bits_to_f32(static_cast<uint16_t>(bits));
    case ST::bf16: return bf16_bits_to_f32(static_cast<uint16_t>(bits));
    case ST::f8e4m3: return f8e4m3_bits_to_f32(static_cast<uint8_t>(bits));
    case ST::f8e5m2: return f8e5m2_bits_to_f32(static_cast<uint8_t>(bits));
    default: return bits_float(static_cast<uint32_t>(bits));
  }
}

// Distance in units in the last place of type t: floats' bit patterns in order.
uint64_t ulps_apart(ST t, uint64_t a, uint64_t b) {
  const uint64_t sign = uint64_t{1} << (8 * storage_bytes(t) - 1);
  auto ordered = [&](uint64_t x) { return x & sign ? -static_cast<int64_t>(x & ~sign) : static_cast<int64_t>(x); };
  int64_t d = ordered(a) - ordered(b);
  return static_cast<uint64_t>(d < 0 ? -d : d);
}

bool agree(ST t, uint64_t a, uint64_t b, bool inexact) {
  if (a == b) return true;
  if (!is_float(t)) return false;
  float x = as_float(t, a), y = as_float(t, b);
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  // A GPU's transcendental is within 2 ulp of the exact result, the engine's within 0.5 (f32);
  // rounded to f16, bf16 or fp8 that is a unit of the smaller type, two at a binade's edge.
  return inexact && ulps_apart(t, a, b) <= (t == ST::f32 ? 3u : 2u);
}

std::map<std::string, uint32_t> baked(const Program& p) {
  std::map<std::string, uint32_t> bake;
  for (size_t c = 0; c < p.constexprs.size(); ++c)
    if (p.constexprs[c].bake) bake[p.constexprs[c].name] = p.constexpr_value(c);
  return bake;
}

// Runs `lowered` on the CPU engine over copies of `inputs`.
Outcome on_engine(const Program& p, const ir::Function& lowered, const std::vector<Bytes>& inputs,
                  bool sanitize = false) {
  Outcome o;
  o.lowered = ir::print(lowered);
  o.tensors = inputs;
  std::vector<cpu::TensorView> views(p.param_count());
  std::vector<uint64_t> values(p.param_count(), 0);
  for (size_t i = 0; i < p.param_count(); ++i) {
    if (const TensorDesc* t = p.tensor(static_cast<int>(i)))
      views[i] = {o.tensors[i].data(), t->elem, p.count(*t), static_cast<int>(i) >= p.output_param(0)};
    values[i] = p.value_bits(static_cast<int>(i));
  }
  cpu::EngineOptions opts;
  // One host thread: small grids, and atomics that every run orders the same way.
  opts.threads = 1;
  opts.sanitize = sanitize;
  cpu::execute(lowered, p.geometry, views, values, opts);
  return o;
}

// Calls `run`, turning what it throws into the outcome's error.
template <class F>
Outcome guarded(F run) {
  try {
    return run();
  } catch (const std::exception& e) {
    Outcome o;
    o.error = e.what();
    return o;
  }
}

}  // namespace

std::vector<Bytes> make_inputs(const Program& p) {
  std::mt19937_64 rng(p.seed ^ 0x9e3779b97f4a7c15ull);
  std::vector<Bytes> data(p.param_count());
  for (size_t i = 0; i < p.param_count(); ++i) {
    const TensorDesc* t = p.tensor(static_cast<int>(i));
    if (!t) continue;
    if (static_cast<int>(i) >= p.output_param(0))
      data[i].assign(p.count(*t) * storage_bytes(t->elem), 0xa5);  // unwritten elements show
    else
      fill(*t, p.count(*t), rng, data[i]);
  }
  return data;
}

Side engine_full_pipeline(bool nvrtc) {
  return {"engine after the full pipeline", [nvrtc](const Program& p, const ir::Function& traced, const auto& inputs) {
            return guarded([&] {
              // By the seed: lowered for the CPU engine, a CUDA GPU or an Apple GPU, whose code
              // generator must then print it (and NVRTC compile the CUDA, with `nvrtc`).
              const Target target = p.seed % 3 == 0   ? Target::cpu()
                                    : p.seed % 3 == 1 ? Target::cuda("sm_90a")
                                                      : Target::metal("apple9");
              passes::PipelineOptions opts;
              opts.bake = baked(p);
              ir::Function lowered = passes::run_pipeline(traced, target, opts);
              if (target.backend == "cuda") {
                std::string src = codegen::emit_cuda(lowered);
                if (nvrtc) cuda::nvrtc_compile(src, codegen::cuda_entry_name(lowered) + ".cu", target.name);
              } else if (target.backend == "metal") {
                codegen::emit_msl(lowered);
              }
              Outcome o = on_engine(p, lowered, inputs);
              o.lowered = fmt::format("// lowered for {} {}\n{}", target.backend, target.name, o.lowered);
              return o;
            });
          }};
}

Side engine_minimal_lowering() {
  return {"engine after the minimal lowering", [](const Program& p, const ir::Function& traced, const auto& inputs) {
            return guarded([&] {
              ir::Function f = passes::lower_threadgroup_reductions(passes::inline_calls(traced), 32);
              ir::verify(f);
              // With the sanitizer: the generator's kernels are race-free by construction, so a
              // fault here is its bug or the sanitizer's.
              return on_engine(p, f, inputs, true);
            });
          }};
}

Side cuda_device(int ordinal) {
  // No disk cache: every fuzzed kernel is new, and would only fill it.
  auto gpu = std::make_shared<cuda::CudaBackend>(ordinal, cuda::CacheConfig{false, {}});
  return {fmt::format("cuda ({})", gpu->device_name()),
          [gpu](const Program& p, const ir::Function& traced, const std::vector<Bytes>& inputs) {
            return guarded([&] {
              passes::PipelineOptions opts;
              opts.bake = baked(p);
              ir::Function lowered = passes::run_pipeline(traced, gpu->target(), opts);
              auto exe = gpu->prepare(lowered);
              Outcome o;
              o.lowered = ir::print(lowered);
              o.tensors = inputs;
              std::vector<Buffer> buffers(p.param_count());
              std::vector<Buffer*> args(p.param_count(), nullptr);
              std::vector<uint64_t> constexprs(p.param_count(), 0);
              struct Release {  // however the run ends
                cuda::CudaBackend& gpu;
                std::vector<Buffer>& buffers;
                ~Release() {
                  for (Buffer& b : buffers)
                    if (b.owner) gpu.release(b);
                }
              } release{*gpu, buffers};
              for (size_t i = 0; i < p.param_count(); ++i) {
                if (const TensorDesc* t = p.tensor(static_cast<int>(i))) {
                  buffers[i] = gpu->alloc(t->elem, p.count(*t));
                  gpu->upload(buffers[i], inputs[i].data());
                  args[i] = &buffers[i];
                } else {
                  constexprs[i] = p.value_bits(static_cast<int>(i));
                }
              }
              gpu->run(*exe, p.geometry, args, constexprs);
              for (size_t i = 0; i < p.param_count(); ++i)
                if (args[i]) gpu->download(buffers[i], o.tensors[i].data());
              return o;
            });
          }};
}

std::string element_text(ST t, const Bytes& data, uint64_t i) {
  uint64_t v = raw(t, data, i);
  const size_t digits = 2 * storage_bytes(t);
  if (is_float(t)) return fmt::format("{} (0x{:0{}x})", as_float(t, v), v, digits);
  int64_t sv = static_cast<int64_t>(v);  // sign-extended from the type's width
  if (!is_unsigned(t) && digits < 16) sv = static_cast<int64_t>(v << (64 - 4 * digits)) >> (64 - 4 * digits);
  return is_unsigned(t) ? fmt::format("{} (0x{:0{}x})", v, v, digits) : fmt::format("{} (0x{:0{}x})", sv, v, digits);
}

std::optional<Difference> first_difference(const Program& p, const Side& sa, const Outcome& a, const Side& sb,
                                           const Outcome& b, bool tolerant) {
  for (size_t i = 0; i < p.param_count(); ++i) {
    const TensorDesc* t = p.tensor(static_cast<int>(i));
    if (!t || i < p.inputs.size()) continue;  // inputs are never written
    for (uint64_t e = 0; e < p.count(*t); ++e) {
      uint64_t x = raw(t->elem, a.tensors[i], e), y = raw(t->elem, b.tensors[i], e);
      bool inexact = tolerant && t->inexact.size() == t->stride && t->inexact[e % t->stride];
      if (agree(t->elem, x, y, inexact)) continue;
      return Difference{
          fmt::format("{}[{}] (thread {}, slot {}{}): {} wrote {}, {} wrote {}", t->name, e, e / t->stride,
                      e % t->stride, inexact ? ", compared within tolerance" : "", sa.name,
                      element_text(t->elem, a.tensors[i], e), sb.name, element_text(t->elem, b.tensors[i], e)),
          static_cast<int>(i), e};
    }
  }
  return std::nullopt;
}

}  // namespace mtile::fuzz
