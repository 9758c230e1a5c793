// NCCL, loaded from libnccl.so.2 (or $MTILE_NCCL_LIBRARY) at run time, as the driver is: mtile
// builds without it. Only the types, values and functions mtile uses are declared; they match
// nccl.h (tests/unit/cuda_abi_test.cpp checks them against the header where it is installed).
#pragma once
#include <cstddef>
#include <string>
#include <type_traits>

#include "backends/cuda/driver_api.hpp"

struct ncclComm;  // opaque, spelled as in nccl.h

namespace mtile::cuda {

using ncclComm_t = ncclComm*;
using ncclResult_t = int;
using ncclDataType_t = int;
using ncclRedOp_t = int;
struct ncclUniqueId {
  char internal[128];
};

constexpr ncclResult_t ncclSuccess = 0;
constexpr ncclRedOp_t ncclSum = 0;
constexpr ncclDataType_t ncclInt32 = 2;
constexpr ncclDataType_t ncclUint32 = 3;
constexpr ncclDataType_t ncclFloat16 = 6;
constexpr ncclDataType_t ncclFloat32 = 7;
constexpr ncclDataType_t ncclBfloat16 = 9;

// Every function mtile needs, as X(symbol, signature). cudaStream_t is CUstream (CUstream_st*).
#define MTILE_NCCL_FUNCTIONS(X)                                                                                 \
  X(ncclGetVersion, ncclResult_t(int*))                                                                         \
  X(ncclGetUniqueId, ncclResult_t(ncclUniqueId*))                                                               \
  X(ncclCommInitRank, ncclResult_t(ncclComm_t*, int, ncclUniqueId, int))                                        \
  X(ncclCommInitAll, ncclResult_t(ncclComm_t*, int, const int*))                                                \
  X(ncclCommDestroy, ncclResult_t(ncclComm_t))                                                                  \
  X(ncclCommCount, ncclResult_t(ncclComm_t, int*))                                                              \
  X(ncclCommUserRank, ncclResult_t(ncclComm_t, int*))                                                           \
  X(ncclAllReduce, ncclResult_t(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, CUstream)) \
  X(ncclGroupStart, ncclResult_t())                                                                             \
  X(ncclGroupEnd, ncclResult_t())                                                                               \
  X(ncclGetErrorString, const char*(ncclResult_t))
// Used where present (NCCL 2.13 and newer): the failure's details.
#define MTILE_NCCL_OPTIONAL_FUNCTIONS(X) X(ncclGetLastError, const char*(ncclComm_t))

struct NcclApi {
#define MTILE_NCCL_MEMBER(name, signature) std::add_pointer_t<signature> name = nullptr;
  MTILE_NCCL_FUNCTIONS(MTILE_NCCL_MEMBER)
  MTILE_NCCL_OPTIONAL_FUNCTIONS(MTILE_NCCL_MEMBER)
#undef MTILE_NCCL_MEMBER
};

// Loads NCCL once per process (after setting NCCL_NVLS_ENABLE=0 unless it is set). Throws Error
// saying why it can't be used.
const NcclApi& nccl();
// Like nccl(), but reports the reason ("" when usable) instead of throwing.
bool nccl_available(std::string* why);
// Throws DeviceError "<call> failed: <NCCL's text> (ncclResult_t r)[: last error]" unless r is
// ncclSuccess. `comm` (may be null) supplies ncclGetLastError's details.
void nccl_check(ncclResult_t r, const char* call, ncclComm_t comm = nullptr);

}  // namespace mtile::cuda
