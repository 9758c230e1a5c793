// mtile declares the driver API and NVRTC itself, so that it builds without CUDA. Where the toolkit
// is installed, this checks those declarations against cuda.h and nvrtc.h (at compile time) and
// the symbol names against the toolkit's stub libcuda.so (which exports every driver function).
// NCCL's declarations are checked against nccl.h where the toolkit's include directory has it.
#include "backends/cuda/driver_api.hpp"  // before cuda.h, whose macros rename cuMemAlloc & co.
#include "backends/cuda/nccl_api.hpp"
#include "backends/cuda/nvrtc.hpp"
// clang-format off
#include <cuda.h>
#include <nvrtc.h>
#if __has_include(<nccl.h>)
#include <nccl.h>
#define MTILE_HAVE_NCCL_H 1
#endif
// clang-format on
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

namespace {

// A cuda.h / nvrtc.h type as mtile spells it: their enums are mtile's ints, all else is shared.
template <class T>
struct Mine {
  using type = T;
};
template <>
struct Mine<::CUresult> {
  using type = int;
};
template <>
struct Mine<::CUdevice_attribute> {
  using type = int;
};
template <>
struct Mine<::CUfunction_attribute> {
  using type = int;
};
template <>
struct Mine<::CUstreamCaptureMode> {
  using type = int;
};
template <>
struct Mine<::CUpointer_attribute> {
  using type = int;
};
template <>
struct Mine<::nvrtcResult> {
  using type = int;
};
template <>
struct Mine<::CUmemAllocationGranularity_flags> {
  using type = int;
};
template <>
struct Mine<::CUmemAllocationProp> {
  using type = mtile::cuda::CUmemAllocationProp;
};
template <>
struct Mine<::CUmemAccessDesc> {
  using type = mtile::cuda::CUmemAccessDesc;
};
template <>
struct Mine<::CUlaunchConfig> {
  using type = mtile::cuda::CUlaunchConfig;
};
template <>
struct Mine<::CUtensorMap> {
  using type = mtile::cuda::CUtensorMap;
};
template <>
struct Mine<::CUtensorMapDataType> {
  using type = int;
};
template <>
struct Mine<::CUtensorMapInterleave> {
  using type = int;
};
template <>
struct Mine<::CUtensorMapSwizzle> {
  using type = int;
};
template <>
struct Mine<::CUtensorMapL2promotion> {
  using type = int;
};
template <>
struct Mine<::CUtensorMapFloatOOBfill> {
  using type = int;
};
#ifdef MTILE_HAVE_NCCL_H
template <>
struct Mine<::ncclResult_t> {
  using type = int;
};
template <>
struct Mine<::ncclDataType_t> {
  using type = int;
};
template <>
struct Mine<::ncclRedOp_t> {
  using type = int;
};
template <>
struct Mine<::ncclUniqueId> {
  using type = mtile::cuda::ncclUniqueId;
};
#endif
template <class T>
struct Mine<T*> {
  using type = typename Mine<T>::type*;
};
template <class T>
struct Mine<const T> {
  using type = const typename Mine<T>::type;
};
template <class R, class... A>
struct Mine<R(A...)> {
  using type = typename Mine<R>::type(typename Mine<A>::type...);
};
template <class F>
using MineOf = typename Mine<std::remove_pointer_t<F>>::type;

}  // namespace

// Inside mtile::cuda the signatures' names resolve to mtile's declarations.
namespace mtile::cuda {
#define MTILE_CHECK_SIGNATURE(name, signature) \
  static_assert(std::is_same_v<MineOf<decltype(&::name)>, signature>, #name " differs from the header");
MTILE_CUDA_DRIVER_FUNCTIONS(MTILE_CHECK_SIGNATURE)
MTILE_NVRTC_FUNCTIONS(MTILE_CHECK_SIGNATURE)

static_assert(std::is_same_v<CUdeviceptr, ::CUdeviceptr>);
static_assert(std::is_same_v<CUdevice, ::CUdevice>);
static_assert(std::is_same_v<CUcontext, ::CUcontext> && std::is_same_v<CUstream, ::CUstream> &&
              std::is_same_v<CUmodule, ::CUmodule> && std::is_same_v<CUfunction, ::CUfunction> &&
              std::is_same_v<CUevent, ::CUevent> && std::is_same_v<CUgraph, ::CUgraph> &&
              std::is_same_v<CUgraphExec, ::CUgraphExec> && std::is_same_v<nvrtcProgram, ::nvrtcProgram>);
static_assert(CUDA_SUCCESS == ::CUDA_SUCCESS && CUDA_ERROR_NO_DEVICE == ::CUDA_ERROR_NO_DEVICE);
static_assert(NVRTC_SUCCESS == ::NVRTC_SUCCESS);
static_assert(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK == ::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
static_assert(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT == ::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == ::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
static_assert(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN ==
              ::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
static_assert(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES == ::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
static_assert(CUDA_ERROR_INVALID_VALUE == ::CUDA_ERROR_INVALID_VALUE);
static_assert(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X == ::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X &&
              CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y == ::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y &&
              CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z == ::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
static_assert(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK == ::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK &&
              CU_DEVICE_ATTRIBUTE_WARP_SIZE == ::CU_DEVICE_ATTRIBUTE_WARP_SIZE);
static_assert(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR ==
                  ::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR &&
              CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR == ::CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR);
static_assert(CU_POINTER_ATTRIBUTE_CONTEXT == ::CU_POINTER_ATTRIBUTE_CONTEXT &&
              CU_POINTER_ATTRIBUTE_MEMORY_TYPE == ::CU_POINTER_ATTRIBUTE_MEMORY_TYPE &&
              CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL == ::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL &&
              CU_POINTER_ATTRIBUTE_RANGE_START_ADDR == ::CU_POINTER_ATTRIBUTE_RANGE_START_ADDR &&
              CU_POINTER_ATTRIBUTE_RANGE_SIZE == ::CU_POINTER_ATTRIBUTE_RANGE_SIZE);
static_assert(CU_MEMORYTYPE_DEVICE == ::CU_MEMORYTYPE_DEVICE);
static_assert(CU_STREAM_NON_BLOCKING == ::CU_STREAM_NON_BLOCKING && CU_EVENT_DEFAULT == ::CU_EVENT_DEFAULT);
static_assert(CU_STREAM_CAPTURE_MODE_GLOBAL == ::CU_STREAM_CAPTURE_MODE_GLOBAL &&
              CU_STREAM_CAPTURE_MODE_THREAD_LOCAL == ::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
              CU_STREAM_CAPTURE_MODE_RELAXED == ::CU_STREAM_CAPTURE_MODE_RELAXED);

// Virtual memory management: the structs' layouts field by field, the handle type, the values.
static_assert(std::is_same_v<CUmemGenericAllocationHandle, ::CUmemGenericAllocationHandle>);
static_assert(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED == ::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
static_assert(CU_MEM_ALLOCATION_TYPE_PINNED == ::CU_MEM_ALLOCATION_TYPE_PINNED &&
              CU_MEM_HANDLE_TYPE_NONE == ::CU_MEM_HANDLE_TYPE_NONE &&
              CU_MEM_LOCATION_TYPE_DEVICE == ::CU_MEM_LOCATION_TYPE_DEVICE &&
              CU_MEM_ACCESS_FLAGS_PROT_READWRITE == ::CU_MEM_ACCESS_FLAGS_PROT_READWRITE &&
              CU_MEM_ALLOC_GRANULARITY_RECOMMENDED == ::CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
#define MTILE_SAME_FIELD(mine, theirs, field)                                                                     \
  static_assert(offsetof(mine, field) == offsetof(theirs, field) && sizeof(mine::field) == sizeof(theirs::field), \
                #mine "::" #field " differs from the header");
static_assert(sizeof(CUmemLocation) == sizeof(::CUmemLocation) && alignof(CUmemLocation) == alignof(::CUmemLocation));
MTILE_SAME_FIELD(CUmemLocation, ::CUmemLocation, type)
MTILE_SAME_FIELD(CUmemLocation, ::CUmemLocation, id)
static_assert(sizeof(CUmemAllocationProp) == sizeof(::CUmemAllocationProp) &&
              alignof(CUmemAllocationProp) == alignof(::CUmemAllocationProp));
MTILE_SAME_FIELD(CUmemAllocationProp, ::CUmemAllocationProp, type)
MTILE_SAME_FIELD(CUmemAllocationProp, ::CUmemAllocationProp, requestedHandleTypes)
MTILE_SAME_FIELD(CUmemAllocationProp, ::CUmemAllocationProp, location)
MTILE_SAME_FIELD(CUmemAllocationProp, ::CUmemAllocationProp, win32HandleMetaData)
MTILE_SAME_FIELD(CUmemAllocationProp, ::CUmemAllocationProp, allocFlags)
static_assert(sizeof(CUmemAccessDesc) == sizeof(::CUmemAccessDesc) &&
              alignof(CUmemAccessDesc) == alignof(::CUmemAccessDesc));
MTILE_SAME_FIELD(CUmemAccessDesc, ::CUmemAccessDesc, location)
MTILE_SAME_FIELD(CUmemAccessDesc, ::CUmemAccessDesc, flags)

// cuLaunchKernelEx's configuration and its one attribute mtile sets.
static_assert(sizeof(CUtensorMap) == sizeof(::CUtensorMap) && alignof(CUtensorMap) == alignof(::CUtensorMap));
static_assert(CU_TENSOR_MAP_DATA_TYPE_UINT8 == ::CU_TENSOR_MAP_DATA_TYPE_UINT8 &&
              CU_TENSOR_MAP_DATA_TYPE_UINT16 == ::CU_TENSOR_MAP_DATA_TYPE_UINT16 &&
              CU_TENSOR_MAP_DATA_TYPE_UINT32 == ::CU_TENSOR_MAP_DATA_TYPE_UINT32 &&
              CU_TENSOR_MAP_DATA_TYPE_UINT64 == ::CU_TENSOR_MAP_DATA_TYPE_UINT64);
static_assert(CU_TENSOR_MAP_INTERLEAVE_NONE == ::CU_TENSOR_MAP_INTERLEAVE_NONE &&
              CU_TENSOR_MAP_SWIZZLE_NONE == ::CU_TENSOR_MAP_SWIZZLE_NONE &&
              CU_TENSOR_MAP_SWIZZLE_128B == ::CU_TENSOR_MAP_SWIZZLE_128B &&
              CU_TENSOR_MAP_L2_PROMOTION_L2_128B == ::CU_TENSOR_MAP_L2_PROMOTION_L2_128B &&
              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE == ::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
static_assert(CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION ==
              ::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
static_assert(sizeof(CUlaunchAttributeValue) == sizeof(::CUlaunchAttributeValue) &&
              alignof(CUlaunchAttributeValue) == alignof(::CUlaunchAttributeValue));
MTILE_SAME_FIELD(CUlaunchAttributeValue, ::CUlaunchAttributeValue, programmaticStreamSerializationAllowed)
static_assert(sizeof(CUlaunchAttribute) == sizeof(::CUlaunchAttribute) &&
              alignof(CUlaunchAttribute) == alignof(::CUlaunchAttribute));
MTILE_SAME_FIELD(CUlaunchAttribute, ::CUlaunchAttribute, id)
MTILE_SAME_FIELD(CUlaunchAttribute, ::CUlaunchAttribute, value)
static_assert(sizeof(CUlaunchConfig) == sizeof(::CUlaunchConfig) &&
              alignof(CUlaunchConfig) == alignof(::CUlaunchConfig));
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, gridDimX)
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, blockDimZ)
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, sharedMemBytes)
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, hStream)
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, attrs)
MTILE_SAME_FIELD(CUlaunchConfig, ::CUlaunchConfig, numAttrs)

#ifdef MTILE_HAVE_NCCL_H
MTILE_NCCL_FUNCTIONS(MTILE_CHECK_SIGNATURE)
MTILE_NCCL_OPTIONAL_FUNCTIONS(MTILE_CHECK_SIGNATURE)
static_assert(std::is_same_v<ncclComm_t, ::ncclComm_t>);
static_assert(sizeof(ncclUniqueId) == sizeof(::ncclUniqueId) && NCCL_UNIQUE_ID_BYTES == sizeof(ncclUniqueId));
static_assert(ncclSuccess == ::ncclSuccess && ncclSum == ::ncclSum);
static_assert(ncclInt32 == ::ncclInt32 && ncclUint32 == ::ncclUint32 && ncclFloat16 == ::ncclFloat16 &&
              ncclFloat32 == ::ncclFloat32 && ncclBfloat16 == ::ncclBfloat16);
#endif
#undef MTILE_SAME_FIELD
#undef MTILE_CHECK_SIGNATURE
}  // namespace mtile::cuda

TEST(CudaAbi, DriverSymbolsAreExported) {
  void* stub = dlopen(MTILE_CUDA_STUB_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (!stub) GTEST_SKIP() << "no stub driver at " MTILE_CUDA_STUB_LIBRARY;
#define MTILE_CHECK_SYMBOL(name, signature) EXPECT_NE(dlsym(stub, #name), nullptr) << #name;
  MTILE_CUDA_DRIVER_FUNCTIONS(MTILE_CHECK_SYMBOL)
#undef MTILE_CHECK_SYMBOL
  dlclose(stub);
}

TEST(CudaAbi, NcclSymbolsAreExported) {
#ifndef MTILE_HAVE_NCCL_H
  GTEST_SKIP() << "no nccl.h next to cuda.h: mtile's NCCL declarations are not checked";
#endif
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) GTEST_SKIP() << "no libnccl.so.2";
#define MTILE_CHECK_SYMBOL(name, signature) EXPECT_NE(dlsym(lib, #name), nullptr) << #name;
  MTILE_NCCL_FUNCTIONS(MTILE_CHECK_SYMBOL)
  MTILE_NCCL_OPTIONAL_FUNCTIONS(MTILE_CHECK_SYMBOL)
#undef MTILE_CHECK_SYMBOL
  dlclose(lib);
}
