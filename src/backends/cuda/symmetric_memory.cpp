// Symmetric memory on CUDA: one reserved virtual range of ranks x slot bytes, slice r backed by
// memory created on rank r's device (cuMemCreate) and mapped at r * slot (cuMemMap), the whole
// range readable and writable by every rank's device (cuMemSetAccess). A kernel on rank r reaches
// a peer's slice with plain loads and stores over NVLink.
#include <fmt/format.h>

#include <numeric>

#include "backends/cuda/cuda_backend.hpp"

namespace mtile::cuda {
namespace {

CUmemAllocationProp pinned_on(int ordinal) {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
  p.location = {CU_MEM_LOCATION_TYPE_DEVICE, ordinal};
  return p;
}

}  // namespace

SymmetricMemory CudaBackend::alloc_symmetric(const std::vector<Backend*>& ranks, ScalarType elem, uint64_t count) {
  if (ranks.empty()) throw Error("alloc_symmetric: no ranks");
  if (ranks[0] != this)
    throw Error("alloc_symmetric: called on a backend that is not ranks[0] (mtile::alloc_symmetric calls ranks[0])");
  const size_t n = ranks.size();
  auto a = std::make_shared<SymmetricAllocation>();
  for (size_t r = 0; r < n; ++r) {
    if (!ranks[r]) throw Error(fmt::format("alloc_symmetric: rank {} has no backend (null)", r));
    auto* c = dynamic_cast<CudaBackend*>(ranks[r]);
    if (!c) throw Error(fmt::format("alloc_symmetric: rank {} is backend '{}', not cuda", r, ranks[r]->name()));
    for (size_t q = 0; q < r; ++q)
      if (a->ranks[q]->ordinal_ == c->ordinal_)
        throw Error(fmt::format("alloc_symmetric: ranks {} and {} are both device {}", q, r, c->ordinal_));
    a->ranks.push_back(c);
  }
  const auto& rk = a->ranks;

  // Peer access between every pair: a kernel's loads and stores of a peer's slice go over NVLink.
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      int can = 0;
      MTILE_CU(cuDeviceCanAccessPeer, &can, rk[i]->device_->device, rk[j]->device_->device);
      if (!can)
        throw Error(
            fmt::format("alloc_symmetric: device {} (rank {}) can't access device {}'s (rank {}) memory: "
                        "cuDeviceCanAccessPeer says no peer access between them",
                        rk[i]->ordinal_, i, rk[j]->ordinal_, j));
      rk[i]->make_current();
      CUresult r = api_->cuCtxEnablePeerAccess(rk[j]->context(), 0);
      if (r != CUDA_SUCCESS && r != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
        throw DeviceError(fmt::format("alloc_symmetric: cuCtxEnablePeerAccess from device {} to device {} failed: {}",
                                      rk[i]->ordinal_, rk[j]->ordinal_, result_text(r)));
    }

  // A slice is whole granules of every device (the granularities are powers of two: lcm = max).
  size_t granule = 1;
  for (CudaBackend* c : rk) {
    CUmemAllocationProp prop = pinned_on(c->ordinal_);
    size_t g = 0;
    MTILE_CU(cuMemGetAllocationGranularity, &g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
    granule = std::lcm(granule, std::max<size_t>(g, 1));
  }
  const uint64_t esize = storage_bytes(elem);
  if (count > (uint64_t{1} << 62) / esize / n)
    throw Error(fmt::format("alloc_symmetric: {} x {} on each of {} ranks is too large", count, type_name(elem), n));
  a->slot_bytes = std::max<uint64_t>(1, (count * esize + granule - 1) / granule) * granule;
  const uint64_t total = a->slot_bytes * n;

  std::string stage = "reserving the range";
  try {
    make_current();
    MTILE_CU(cuMemAddressReserve, &a->base, total, granule, 0, 0);
    for (size_t r = 0; r < n; ++r) {
      stage = fmt::format("creating and mapping rank {}'s slice", r);
      rk[r]->make_current();
      CUmemAllocationProp prop = pinned_on(rk[r]->ordinal_);
      CUmemGenericAllocationHandle h = 0;
      MTILE_CU(cuMemCreate, &h, a->slot_bytes, &prop, 0);
      a->handles.push_back(h);
      MTILE_CU(cuMemMap, a->base + r * a->slot_bytes, a->slot_bytes, 0, h, 0);
      a->mapped++;
    }
    stage = "granting every device access";
    std::vector<CUmemAccessDesc> access(n);
    for (size_t r = 0; r < n; ++r)
      access[r] = {{CU_MEM_LOCATION_TYPE_DEVICE, rk[r]->ordinal_}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    MTILE_CU(cuMemSetAccess, a->base, total, access.data(), n);
    // Zeroed (kernels keep flags in it): each slice by its own device, then waited for.
    stage = "zeroing";
    for (size_t r = 0; r < n; ++r) {
      rk[r]->make_current();
      MTILE_CU(cuMemsetD8Async, a->base + r * a->slot_bytes, 0, a->slot_bytes, rk[r]->stream_);
    }
    for (CudaBackend* c : rk) {
      c->make_current();
      MTILE_CU(cuStreamSynchronize, c->stream_);
    }
  } catch (const DeviceError& e) {
    a->released = true;
    free_symmetric(a, true);
    std::string devices;
    for (CudaBackend* c : rk) devices += fmt::format("{}{}", devices.empty() ? "" : ", ", c->ordinal_);
    throw DeviceError(fmt::format("alloc_symmetric of {} x {} bytes on devices {}, {}: {}", n, a->slot_bytes, devices,
                                  stage, e.what()));
  } catch (...) {
    a->released = true;
    free_symmetric(a, true);
    throw;
  }

  SymmetricMemory m;
  m.slot = a->slot_bytes / esize;
  m.count = count;
  for (size_t r = 0; r < n; ++r) {
    Buffer v{elem, n * m.slot, a->base, rk[r], rk[r]->track_allocation()};
    a->view_ids.push_back(v.id);
    m.views.push_back(v);
  }
  for (size_t r = 0; r < n; ++r) {
    std::lock_guard lock(rk[r]->symmetric_mu_);
    rk[r]->symmetric_[a->base] = a;
    rk[r]->symmetric_views_.insert(a->view_ids[r]);
  }
  return m;
}

void CudaBackend::release_symmetric(SymmetricMemory& m) {
  if (m.views.empty())
    throw Error("release_symmetric: the symmetric memory has no views (never allocated, or released already)");
  const CUdeviceptr base = m.handle();
  std::shared_ptr<SymmetricAllocation> a;
  {
    std::lock_guard lock(symmetric_mu_);
    if (auto it = symmetric_.find(base); it != symmetric_.end()) a = it->second;
  }
  if (!a || a->released.exchange(true))
    throw Error(
        fmt::format("release_symmetric: device {} is a rank of no symmetric memory at 0x{:x} (released "
                    "already, or of other devices)",
                    ordinal_, base));
  m = SymmetricMemory{};
  free_symmetric(a, false);
}

bool CudaBackend::is_symmetric_view(const Buffer& b) const {
  std::lock_guard lock(symmetric_mu_);
  return b.id != 0 && symmetric_views_.count(b.id) > 0;
}

// Also undoes a partial alloc_symmetric: only what was done is undone (no views yet, nothing
// registered). Every rank's backend is alive here: one destroyed earlier freed `a` first.
void CudaBackend::free_symmetric(const std::shared_ptr<SymmetricAllocation>& a, bool quiet) {
  for (size_t r = 0; r < a->ranks.size(); ++r) {
    CudaBackend* c = a->ranks[r];
    std::lock_guard lock(c->symmetric_mu_);
    c->symmetric_.erase(a->base);
    if (r < a->view_ids.size()) {
      c->symmetric_views_.erase(a->view_ids[r]);
      c->forget_allocation(a->view_ids[r]);
    }
  }
  const DriverApi& api = driver();
  std::string failure;
  auto step = [&](CUresult r, const char* call) {
    if (r != CUDA_SUCCESS && failure.empty()) failure = fmt::format("{} failed: {}", call, result_text(r));
  };
  // Work in flight on any rank may still use the range (cuMemFree waits likewise).
  for (CudaBackend* c : a->ranks) {
    step(api.cuCtxSetCurrent(c->context()), "cuCtxSetCurrent");
    step(api.cuCtxSynchronize(), "cuCtxSynchronize");
  }
  for (size_t r = 0; r < a->mapped; ++r) step(api.cuMemUnmap(a->base + r * a->slot_bytes, a->slot_bytes), "cuMemUnmap");
  for (CUmemGenericAllocationHandle h : a->handles) step(api.cuMemRelease(h), "cuMemRelease");
  if (a->base) step(api.cuMemAddressFree(a->base, a->slot_bytes * a->ranks.size()), "cuMemAddressFree");
  if (!failure.empty() && !quiet)
    throw DeviceError(fmt::format("release_symmetric of 0x{:x} ({} ranks x {} bytes): {}", a->base, a->ranks.size(),
                                  a->slot_bytes, failure));
}

}  // namespace mtile::cuda
