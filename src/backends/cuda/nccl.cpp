// NCCL's loader and mtile's Communicator over CUDA backends.
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nccl_api.hpp"
#include "mtile/distributed.hpp"

namespace mtile {
namespace cuda {
namespace {

struct LoadedNccl {
  NcclApi api;
  std::string error;  // empty when usable
};

LoadedNccl load_nccl() {
  LoadedNccl n;
  // NVLink multicast (NVLS) stays off unless the caller chose (distributed.hpp); NCCL reads the
  // variable when a communicator is made, which is after this.
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  const char* env = std::getenv("MTILE_NCCL_LIBRARY");
  std::string path = env && *env ? env : "libnccl.so.2";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never closed, like the driver
  if (!lib) {
    const char* why = dlerror();
    n.error = fmt::format(
        "NCCL can't be loaded from {} ({}); install NCCL or set MTILE_NCCL_LIBRARY to a libnccl.so.2's path", path,
        why ? why : "not found");
    return n;
  }
  std::string missing;
#define MTILE_NCCL_RESOLVE(name, signature) \
  n.api.name = reinterpret_cast<std::add_pointer_t<signature>>(dlsym(lib, #name));
#define MTILE_NCCL_REQUIRE(name, signature) \
  MTILE_NCCL_RESOLVE(name, signature)       \
  if (!n.api.name) missing += std::string(missing.empty() ? "" : ", ") + #name;
  MTILE_NCCL_FUNCTIONS(MTILE_NCCL_REQUIRE)
  MTILE_NCCL_OPTIONAL_FUNCTIONS(MTILE_NCCL_RESOLVE)
#undef MTILE_NCCL_REQUIRE
#undef MTILE_NCCL_RESOLVE
  if (!missing.empty()) n.error = fmt::format("the NCCL in {} lacks {}: it is too old for mtile", path, missing);
  return n;
}

const LoadedNccl& loaded() {
  static const LoadedNccl n = load_nccl();
  return n;
}

// The CUDA backend of rank `r` of a communicator, or Error naming what it is instead.
CudaBackend& cuda_rank(Backend* b, size_t r, const char* what) {
  if (!b) throw Error(fmt::format("{}: rank {} has no backend (null)", what, r));
  auto* c = dynamic_cast<CudaBackend*>(b);
  if (!c)
    throw Error(fmt::format("{}: rank {} is backend '{}', not cuda: NCCL runs on CUDA devices", what, r, b->name()));
  return *c;
}

ncclDataType_t nccl_type(ScalarType t) {
  switch (t) {
    case ScalarType::f32: return ncclFloat32;
    case ScalarType::f16: return ncclFloat16;
    case ScalarType::bf16: return ncclBfloat16;
    case ScalarType::u32: return ncclUint32;
    case ScalarType::i32: return ncclInt32;
    default:
      throw Error(fmt::format(
          "all_reduce_sum: element type {} is not one mtile sums with NCCL (f32, f16, bf16, u32, i32)", type_name(t)));
  }
}

}  // namespace

const NcclApi& nccl() {
  const LoadedNccl& n = loaded();
  if (!n.error.empty()) throw Error(n.error);
  return n.api;
}

bool nccl_available(std::string* why) {
  const LoadedNccl& n = loaded();
  if (why) *why = n.error;
  return n.error.empty();
}

void nccl_check(ncclResult_t r, const char* call, ncclComm_t comm) {
  if (r == ncclSuccess) return;
  const NcclApi& api = nccl();
  std::string text = fmt::format("{} failed: {} (ncclResult_t {})", call, api.ncclGetErrorString(r), r);
  if (api.ncclGetLastError)
    if (const char* last = api.ncclGetLastError(comm); last && *last) text += fmt::format(": {}", last);
  throw DeviceError(text);
}

}  // namespace cuda

using cuda::CudaBackend;
using cuda::nccl;
using cuda::nccl_check;

std::string nccl_unavailable_reason() {
  std::string why;
  cuda::nccl_available(&why);
  return why;
}

std::string nccl_version() {
  int v = 0;
  nccl_check(nccl().ncclGetVersion(&v), "ncclGetVersion");
  // NCCL_VERSION(X, Y, Z): X*1000 + Y*100 + Z up to 2.8, X*10000 + Y*100 + Z from 2.9 on.
  if (v >= 10000) return fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
  return fmt::format("{}.{}.{}", v / 1000, v / 100 % 10, v % 100);
}

namespace {

// The arguments of one rank's all_reduce_sum, checked before anything is enqueued (a group must
// never be left with some ranks' collectives and not others'); the stream to use.
cuda::CUstream checked_stream(CudaBackend& b, int rank, const Buffer& send, const Buffer& recv, const Stream* stream) {
  b.check_usable(send, fmt::format("all_reduce_sum (rank {}) send", rank));
  b.check_usable(recv, fmt::format("all_reduce_sum (rank {}) recv", rank));
  if (send.elem != recv.elem || send.count != recv.count)
    throw Error(fmt::format("all_reduce_sum (rank {}): send is {} x {}, recv {} x {}: they must match", rank,
                            send.count, type_name(send.elem), recv.count, type_name(recv.elem)));
  cuda::nccl_type(send.elem);
  if (stream && stream->owner != &b)
    throw Error(fmt::format("all_reduce_sum (rank {}): the stream belongs to another backend than device {}'s", rank,
                            b.ordinal()));
  return stream ? reinterpret_cast<cuda::CUstream>(stream->handle) : b.stream();
}

}  // namespace

struct Communicator::Impl {
  cuda::ncclComm_t comm = nullptr;
  CudaBackend* backend = nullptr;
  int rank = 0, size = 0;
  ~Impl() {
    if (!comm) return;
    try {  // a destructor can't report errors
      backend->make_current();
      nccl().ncclCommDestroy(comm);
    } catch (...) {
    }
  }
  void enqueue(const Buffer& send, Buffer& recv, cuda::CUstream s) const {
    backend->make_current();
    nccl_check(nccl().ncclAllReduce(reinterpret_cast<const void*>(send.handle), reinterpret_cast<void*>(recv.handle),
                                    send.count, cuda::nccl_type(send.elem), cuda::ncclSum, comm, s),
               "ncclAllReduce", comm);
  }
};

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;
Communicator::~Communicator() = default;
int Communicator::rank() const {
  return impl_->rank;
}
int Communicator::size() const {
  return impl_->size;
}
Backend& Communicator::backend() const {
  return *impl_->backend;
}

std::vector<Communicator> Communicator::init_all(const std::vector<Backend*>& ranks) {
  constexpr const char* what = "Communicator::init_all";
  if (ranks.empty()) throw Error(fmt::format("{}: no ranks", what));
  std::vector<CudaBackend*> cuda;
  std::vector<int> devices;
  for (size_t r = 0; r < ranks.size(); ++r) {
    cuda.push_back(&cuda::cuda_rank(ranks[r], r, what));
    for (size_t q = 0; q < r; ++q)
      if (devices[q] == cuda[r]->ordinal())
        throw Error(fmt::format("{}: ranks {} and {} are both device {}: each rank needs a device of its own", what, q,
                                r, devices[q]));
    devices.push_back(cuda[r]->ordinal());
  }
  const cuda::NcclApi& api = nccl();
  std::vector<cuda::ncclComm_t> comms(ranks.size(), nullptr);
  cuda[0]->make_current();
  nccl_check(api.ncclCommInitAll(comms.data(), static_cast<int>(ranks.size()), devices.data()), "ncclCommInitAll");
  std::vector<Communicator> out;
  for (size_t r = 0; r < ranks.size(); ++r) {
    auto impl = std::make_unique<Impl>();
    impl->comm = comms[r];
    impl->backend = cuda[r];
    impl->rank = static_cast<int>(r);
    impl->size = static_cast<int>(ranks.size());
    out.push_back(Communicator(std::move(impl)));
  }
  return out;
}

NcclUniqueId Communicator::unique_id() {
  cuda::ncclUniqueId id{};
  nccl_check(nccl().ncclGetUniqueId(&id), "ncclGetUniqueId");
  NcclUniqueId out;
  static_assert(sizeof out == sizeof id.internal);
  std::memcpy(out.data(), id.internal, sizeof id.internal);
  return out;
}

Communicator Communicator::init_rank(Backend& device, const NcclUniqueId& id, int ranks, int rank) {
  CudaBackend& b = cuda::cuda_rank(&device, static_cast<size_t>(rank), "Communicator::init_rank");
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw Error(fmt::format("Communicator::init_rank: rank {} of {} ranks: it must lie in [0, ranks)", rank, ranks));
  const cuda::NcclApi& api = nccl();
  cuda::ncclUniqueId nid;
  std::memcpy(nid.internal, id.data(), sizeof nid.internal);
  auto impl = std::make_unique<Impl>();
  impl->backend = &b;
  impl->rank = rank;
  impl->size = ranks;
  b.make_current();  // NCCL takes the rank's device from the current context
  nccl_check(api.ncclCommInitRank(&impl->comm, ranks, nid, rank), "ncclCommInitRank");
  return Communicator(std::move(impl));
}

void Communicator::all_reduce_sum(const Buffer& send, Buffer& recv, const Stream* stream) {
  impl_->enqueue(send, recv, checked_stream(*impl_->backend, impl_->rank, send, recv, stream));
}

void nccl_group_start() {
  nccl_check(nccl().ncclGroupStart(), "ncclGroupStart");
}

void nccl_group_end() {
  nccl_check(nccl().ncclGroupEnd(), "ncclGroupEnd");
}

void all_reduce_sum(std::vector<Communicator>& comms, const std::vector<const Buffer*>& send,
                    const std::vector<Buffer*>& recv, const std::vector<const Stream*>& streams) {
  const size_t n = comms.size();
  if (send.size() != n || recv.size() != n || (!streams.empty() && streams.size() != n))
    throw Error(fmt::format("all_reduce_sum: {} communicators, {} send and {} recv buffers and {} streams: one each", n,
                            send.size(), recv.size(), streams.size()));
  auto stream = [&](size_t r) { return streams.empty() ? nullptr : streams[r]; };
  for (size_t r = 0; r < n; ++r) {
    if (!send[r] || !recv[r]) throw Error(fmt::format("all_reduce_sum: rank {} has no send or recv buffer", r));
    // Every communicator's backend is a CudaBackend (the constructors take no other).
    checked_stream(static_cast<CudaBackend&>(comms[r].backend()), comms[r].rank(), *send[r], *recv[r], stream(r));
  }
  nccl_group_start();
  try {
    for (size_t r = 0; r < n; ++r) comms[r].all_reduce_sum(*send[r], *recv[r], stream(r));
  } catch (...) {
    nccl().ncclGroupEnd();  // NCCL drops a failed group's work; the first error is the one to report
    throw;
  }
  nccl_group_end();
}

}  // namespace mtile
