// mtile_launch and mtile_launch_tensors: each tensor is checked (device, element type, compact
// layout, element count), the variant is chosen, the contract checked for the dims on the tensors'
// device, and the kernel runs on the caller's memory and stream through Context::global().
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <optional>

#include "backends/cuda/driver_api.hpp"
#include "capi/kernel_table.hpp"
#include "capi/status.hpp"
#include "mtile/runtime.hpp"

namespace mtile::capi {
namespace {

// One tensor argument once its DLTensor (or mtile_tensor) is read.
struct TensorArg {
  uint64_t address = 0, elements = 0;
  ScalarType elem = ScalarType::f32;
  int32_t device = -1;  // -1: host; else a CUDA ordinal
};

std::string device_text(int32_t device) {
  return device < 0 ? "cpu" : fmt::format("cuda:{}", device);
}

const std::string& param_name(const mtile_kernel& k, size_t tensor) {
  return k.kernel->def.params()[k.tensor_params[tensor]].name;
}

std::string tensor_names(const mtile_kernel& k) {
  std::vector<std::string> names;
  for (size_t i = 0; i < k.tensor_params.size(); ++i) names.push_back(param_name(k, i));
  return fmt::format("{}", fmt::join(names, ", "));
}

const char* dlpack_device_name(int32_t type) {
  switch (type) {
    case 1: return "CPU";
    case 2: return "CUDA";
    case 3: return "CUDA host (pinned)";
    case 4: return "OpenCL";
    case 7: return "Vulkan";
    case 8: return "Metal";
    case 9: return "VPI";
    case 10: return "ROCm";
    case 11: return "ROCm host";
    case 13: return "CUDA managed";
    case 14: return "oneAPI";
    default: return "another";
  }
}

TensorArg read_dltensor(const mtile_kernel& k, size_t i, const DLTensor* t) {
  auto fail = [&](const std::string& why) {
    throw Error(fmt::format("kernel {}: tensor '{}' {}", k.kernel.name(), param_name(k, i), why));
  };
  if (!t) fail("is NULL");
  TensorArg a;
  if (t->device.device_type == kDLCPU)
    a.device = -1;
  else if (t->device.device_type == kDLCUDA)
    a.device = t->device.device_id;
  else
    fail(fmt::format("is on a {} device (DLPack device type {}); mtile takes CPU and CUDA tensors",
                     dlpack_device_name(t->device.device_type), static_cast<int>(t->device.device_type)));
  const DLDataType d = t->dtype;
  if (d.lanes != 1) fail(fmt::format("has {} lanes per element; mtile takes 1", d.lanes));
  struct Known {
    uint8_t code, bits;
    ScalarType type;
  };
  static const Known known[] = {
      {kDLFloat, 32, ScalarType::f32}, {kDLFloat, 16, ScalarType::f16}, {kDLBfloat, 16, ScalarType::bf16},
      {kDLUInt, 32, ScalarType::u32},  {kDLInt, 32, ScalarType::i32},   {kDLUInt, 64, ScalarType::u64},
      {kDLInt, 64, ScalarType::i64},   {kDLUInt, 8, ScalarType::u8},    {kDLInt, 8, ScalarType::i8},
      {kDLUInt, 16, ScalarType::u16},  {kDLInt, 16, ScalarType::i16}};
  bool found = false;
  for (const Known& k2 : known)
    if (d.code == k2.code && d.bits == k2.bits) a.elem = k2.type, found = true;
  if (!found) {
    const char* code = d.code == kDLFloat    ? "float"
                       : d.code == kDLInt    ? "int"
                       : d.code == kDLUInt   ? "uint"
                       : d.code == kDLBfloat ? "bfloat"
                                             : "code ";
    fail(
        fmt::format("holds {}{} elements; mtile takes f32, f16, bf16 and 8- to 64-bit integers through DLPack "
                    "(fp8 by address: mtile_launch_tensors)",
                    code, d.bits));
  }
  if (t->ndim < 0 || (t->ndim > 0 && !t->shape)) fail(fmt::format("has no valid shape (ndim = {})", t->ndim));
  std::vector<int64_t> shape(t->shape, t->shape + t->ndim);
  a.elements = 1;
  for (int64_t s : shape) {
    if (s < 0) fail(fmt::format("has a negative extent (shape [{}])", fmt::join(shape, ", ")));
    if (s > 0 && a.elements > (uint64_t{1} << 62) / static_cast<uint64_t>(s))
      fail(fmt::format("is too large (shape [{}])", fmt::join(shape, ", ")));
    a.elements *= static_cast<uint64_t>(s);
  }
  if (t->strides) {  // compact row-major, where extents of 1 may have any stride
    int64_t expected = 1;
    for (int32_t dim = t->ndim - 1; dim >= 0; --dim) {
      if (shape[dim] != 1 && t->strides[dim] != expected)
        fail(fmt::format("is not contiguous (shape [{}], strides [{}] in elements); pass a contiguous copy",
                         fmt::join(shape, ", "), fmt::join(t->strides, t->strides + t->ndim, ", ")));
      expected *= shape[dim];
    }
  }
  if (!t->data && a.elements > 0) fail("has no data (NULL)");
  a.address = reinterpret_cast<uint64_t>(t->data) + t->byte_offset;
  return a;
}

TensorArg read_tensor(const mtile_kernel& k, size_t i, const mtile_tensor& t) {
  std::optional<ScalarType> elem = scalar_type(t.dtype);
  if (!elem) bad_dtype(fmt::format("kernel {}: tensor '{}'", k.kernel.name(), param_name(k, i)), t.dtype);
  TensorArg a{t.address, t.elements, *elem, t.device};
  if (t.device < -1)
    throw Error(fmt::format("kernel {}: tensor '{}' has device {} (-1: host, N >= 0: CUDA device N)", k.kernel.name(),
                            param_name(k, i), t.device));
  return a;
}

// Puts back the calling thread's current CUDA context, which a launch on a device makes its own:
// the caller (PyTorch) reads its current device from it.
class KeepCurrentContext {
 public:
  KeepCurrentContext() : api_(cuda::driver()) { cuda::check(api_.cuCtxGetCurrent(&saved_), "cuCtxGetCurrent"); }
  ~KeepCurrentContext() {
    cuda::CUcontext now = nullptr;
    if (api_.cuCtxGetCurrent(&now) == cuda::CUDA_SUCCESS && now != saved_) api_.cuCtxSetCurrent(saved_);
  }
  KeepCurrentContext(const KeepCurrentContext&) = delete;
  KeepCurrentContext& operator=(const KeepCurrentContext&) = delete;

 private:
  const cuda::DriverApi& api_;
  cuda::CUcontext saved_ = nullptr;
};

// The backend of a device, opened on first use: -1 the CPU engine, N CUDA device N.
Backend& backend_for(int32_t device) {
  static std::array<std::atomic<Backend*>, 65> open{};
  if (device >= 64) throw Error(fmt::format("CUDA device {} is beyond the 64 that mtile addresses", device));
  std::atomic<Backend*>& slot = open[static_cast<size_t>(device + 1)];
  Backend* b = slot.load(std::memory_order_acquire);
  if (!b) {
    b = &Context::global().backend(device_text(device));  // the Context opens each name once
    slot.store(b, std::memory_order_release);
  }
  return *b;
}

std::string variant_text(const mtile_kernel& k, ScalarType t) {
  const auto& types = k.param_types(t);
  std::vector<std::string> parts;
  for (size_t i = 0; i < k.tensor_params.size(); ++i)
    parts.push_back(fmt::format("{} {}", param_name(k, i), type_name(types[k.tensor_params[i]])));
  return fmt::format("{} ({})", type_name(t), fmt::join(parts, ", "));
}

// The variant whose tensor types are the arguments' (AUTO), or the one asked for, checked.
ScalarType choose_variant(const mtile_kernel& k, const std::vector<TensorArg>& args, int32_t dtype) {
  const std::string& name = k.kernel.name();
  auto matches = [&](ScalarType t) {
    const auto& types = k.param_types(t);
    for (size_t i = 0; i < args.size(); ++i)
      if (args[i].elem != types[k.tensor_params[i]]) return false;
    return true;
  };
  auto given = [&] {  // formatted only for an error
    std::vector<std::string> parts;
    for (size_t i = 0; i < args.size(); ++i)
      parts.push_back(fmt::format("{} {}", param_name(k, i), type_name(args[i].elem)));
    return fmt::format("{}", fmt::join(parts, ", "));
  };
  if (dtype == MTILE_DTYPE_AUTO) {
    for (ScalarType t : k.kernel->def.dtypes())
      if (matches(t)) return t;
    std::vector<std::string> variants;
    for (ScalarType t : k.kernel->def.dtypes()) variants.push_back(variant_text(k, t));
    throw Error(fmt::format("kernel {}: no variant takes these tensors ({}); its variants take {}", name, given(),
                            fmt::join(variants, "; ")));
  }
  std::optional<ScalarType> asked = scalar_type(dtype);
  if (!asked) bad_dtype(fmt::format("kernel {}: variant", name), dtype);
  ScalarType t = *asked;
  if (!matches(t))
    throw Error(
        fmt::format("kernel {}: the {} variant takes {}; given {}", name, type_name(t), variant_text(k, t), given()));
  return t;
}

// The plans this thread launched last, by kernel, variant asked, tensor types, device and dims: a
// decode loop launches a few kernels with one shape each, and a hit skips choosing the variant,
// making the Shape and Context::plan's lookup (its lock and map). Tensors, stream and scalars are
// still checked at every call.
struct RecentPlan {
  const mtile_kernel* kernel = nullptr;
  int32_t dtype = 0, device = 0;
  std::vector<ScalarType> elems;
  std::vector<uint32_t> dims;
  std::shared_ptr<const LaunchPlan> plan;
};

class RecentPlans {
 public:
  std::shared_ptr<const LaunchPlan> find(const mtile_kernel& k, const std::vector<TensorArg>& args,
                                         const uint32_t* dims, size_t num_dims, int32_t dtype, int32_t device) const {
    for (const RecentPlan& r : plans_) {
      if (r.kernel != &k || r.dtype != dtype || r.device != device || r.dims.size() != num_dims ||
          r.elems.size() != args.size())
        continue;
      bool same = std::equal(r.dims.begin(), r.dims.end(), dims);
      for (size_t i = 0; same && i < args.size(); ++i) same = r.elems[i] == args[i].elem;
      if (same) return r.plan;
    }
    return nullptr;
  }
  void remember(const mtile_kernel& k, const std::vector<TensorArg>& args, const uint32_t* dims, size_t num_dims,
                int32_t dtype, int32_t device, std::shared_ptr<const LaunchPlan> plan) {
    RecentPlan& r = plans_[next_++ % plans_.size()];
    r.kernel = &k;
    r.dtype = dtype;
    r.device = device;
    r.dims.assign(dims, dims + num_dims);
    r.elems.clear();
    for (const TensorArg& a : args) r.elems.push_back(a.elem);
    r.plan = std::move(plan);
  }

 private:
  std::array<RecentPlan, 16> plans_;
  size_t next_ = 0;
};

void launch(const mtile_kernel& k, const std::vector<TensorArg>& args, const uint32_t* dims, size_t num_dims,
            const double* scalars, size_t num_scalars, int32_t dtype, uint64_t native_stream) {
  const KernelSpec& spec = k.kernel.spec();
  const std::string& name = k.kernel.name();
  if (num_dims != spec.dims.size() || (num_dims > 0 && !dims))
    throw Error(fmt::format("kernel {} takes {} dims ({}), {} given", name, spec.dims.size(),
                            fmt::join(spec.dims, ", "), dims ? num_dims : 0));
  // A collective kernel's symmetric tensors must be memory every rank maps (alloc_symmetric), which
  // no DLPack tensor is: its peers' slices would be read past the tensor's end.
  if (!spec.symmetric.empty())
    throw Error(
        fmt::format("kernel {} is a collective kernel (symmetric tensors {}): launch it through the C++ "
                    "runtime's alloc_symmetric and run_collective (docs/collectives.md); the C ABI has no "
                    "symmetric memory yet",
                    name, fmt::join(spec.symmetric, ", ")));
  int32_t device = args.empty() ? -1 : args[0].device;
  for (size_t i = 1; i < args.size(); ++i)
    if (args[i].device != device)
      throw Error(fmt::format("kernel {}: tensors are on different devices: '{}' on {}, '{}' on {}", name,
                              param_name(k, 0), device_text(device), param_name(k, i), device_text(args[i].device)));
  if (num_scalars != k.scalar_params.size() || (num_scalars > 0 && !scalars)) {
    std::vector<std::string> names;
    for (size_t i : k.scalar_params) names.push_back(spec.def.params()[i].name);
    throw Error(fmt::format("kernel {} takes {} scalars ({}), {} given", name, names.size(), fmt::join(names, ", "),
                            scalars ? num_scalars : 0));
  }
  LaunchOptions opts;
  for (size_t i = 0; i < num_scalars; ++i) opts.scalars[spec.def.params()[k.scalar_params[i]].name] = scalars[i];
  thread_local RecentPlans recent;
  std::shared_ptr<const LaunchPlan> plan = recent.find(k, args, dims, num_dims, dtype, device);
  ScalarType t = plan ? plan->dtype : choose_variant(k, args, dtype);

  std::optional<KeepCurrentContext> keep;
  Backend* opened = nullptr;
  try {
    if (device >= 0) keep.emplace();
    opened = &backend_for(device);
  } catch (const Error& e) {
    throw Error(
        fmt::format("kernel {}: its tensors are on {}, which mtile can't use: {}", name, device_text(device), e.what()),
        e.kind());
  }
  Backend& backend = *opened;
  if (device < 0 && native_stream != 0)
    throw Error(
        fmt::format("kernel {}: CPU tensors run at once, on no stream; stream 0x{:x} was given", name, native_stream));
  Stream stream = backend.wrap_stream(native_stream);
  Context& ctx = Context::global();
  if (!plan) {
    Shape shape;
    for (size_t i = 0; i < num_dims; ++i) shape.emplace(spec.dims[i], dims[i]);
    plan = ctx.plan(backend, k.kernel, t, shape);  // checks the contract first
    recent.remember(k, args, dims, num_dims, dtype, device, plan);
  }
  std::vector<Buffer> buffers(args.size());
  std::vector<Buffer*> by_param(plan->params().size(), nullptr);
  for (size_t i = 0; i < args.size(); ++i) {
    size_t p = k.tensor_params[i];
    if (args[i].elements != plan->elements[p])
      throw Error(fmt::format("kernel {}: tensor '{}' has {} elements; {} = {} needs {} for {}", name, param_name(k, i),
                              args[i].elements, param_name(k, i), spec.sizes.at(param_name(k, i)).text(),
                              plan->elements[p], shape_text(plan->shape)));
    try {
      buffers[i] = backend.wrap(args[i].address, args[i].elem, args[i].elements);
    } catch (const DeviceError&) {
      throw;
    } catch (const Error& e) {  // name the kernel and the tensor, as every other refusal here does
      throw Error(fmt::format("kernel {}: tensor '{}': {}", name, param_name(k, i), e.what()));
    }
    by_param[p] = &buffers[i];
  }
  opts.stream = &stream;
  ctx.run(backend, *plan, by_param, opts);
}

void check_call(const mtile_kernel* k, const void* tensors, size_t num_tensors) {
  if (!k) throw Error("mtile_launch: kernel is NULL");
  if (num_tensors != k->tensor_params.size())
    throw Error(fmt::format("kernel {} takes {} tensors ({}), {} given", k->kernel.name(), k->tensor_params.size(),
                            tensor_names(*k), num_tensors));
  if (num_tensors > 0 && !tensors) throw Error(fmt::format("kernel {}: tensors is NULL", k->kernel.name()));
}

}  // namespace
}  // namespace mtile::capi

extern "C" {

int mtile_launch(const mtile_kernel* kernel, const DLTensor* const* tensors, size_t num_tensors, const uint32_t* dims,
                 size_t num_dims, const double* scalars, size_t num_scalars, int32_t dtype, uint64_t stream) {
  using namespace mtile::capi;
  return guard([&] {
    check_call(kernel, tensors, num_tensors);
    std::vector<TensorArg> args(num_tensors);
    for (size_t i = 0; i < num_tensors; ++i) args[i] = read_dltensor(*kernel, i, tensors[i]);
    launch(*kernel, args, dims, num_dims, scalars, num_scalars, dtype, stream);
  });
}

int mtile_launch_tensors(const mtile_kernel* kernel, const mtile_tensor* tensors, size_t num_tensors,
                         const uint32_t* dims, size_t num_dims, const double* scalars, size_t num_scalars,
                         int32_t dtype, uint64_t stream) {
  using namespace mtile::capi;
  return guard([&] {
    check_call(kernel, tensors, num_tensors);
    std::vector<TensorArg> args(num_tensors);
    for (size_t i = 0; i < num_tensors; ++i) args[i] = read_tensor(*kernel, i, tensors[i]);
    launch(*kernel, args, dims, num_dims, scalars, num_scalars, dtype, stream);
  });
}

int mtile_launch_packed(const void* call) {
  using namespace mtile::capi;
  return guard([&] {
    if (!call) throw mtile::Error("mtile_launch_packed: call is NULL");
    const auto* bytes = static_cast<const unsigned char*>(call);
    mtile_call c;
    std::memcpy(&c, bytes, sizeof c);
    bytes += sizeof c;
    check_call(c.kernel, bytes, c.num_tensors);
    std::vector<TensorArg> args(c.num_tensors);
    for (size_t i = 0; i < c.num_tensors; ++i, bytes += sizeof(mtile_tensor)) {
      mtile_tensor t;
      std::memcpy(&t, bytes, sizeof t);
      args[i] = read_tensor(*c.kernel, i, t);
    }
    // The counts are checked before the block is read past the records.
    const mtile_kernel& k = *c.kernel;
    if (c.num_dims != k.kernel.spec().dims.size() || c.num_scalars != k.scalar_params.size())
      throw mtile::Error(fmt::format("kernel {} takes {} dims and {} scalars; the packed call has {} and {}",
                                     k.kernel.name(), k.kernel.spec().dims.size(), k.scalar_params.size(), c.num_dims,
                                     c.num_scalars));
    std::vector<uint32_t> dims(c.num_dims);
    std::memcpy(dims.data(), bytes, dims.size() * sizeof(uint32_t));
    bytes += dims.size() * sizeof(uint32_t);
    std::vector<double> scalars(c.num_scalars);
    std::memcpy(scalars.data(), bytes, scalars.size() * sizeof(double));
    launch(k, args, dims.data(), dims.size(), scalars.data(), scalars.size(), c.dtype, c.stream);
  });
}

}  // extern "C"
