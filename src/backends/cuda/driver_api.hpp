// The CUDA driver API, loaded from libcuda.so.1 at run time: mtile builds without the CUDA toolkit
// and starts on machines without a driver. Only the types, values and functions mtile uses are
// declared here; they match cuda.h (tests/unit/cuda_abi_test.cpp checks them against the header).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

// Opaque handles, spelled as in cuda.h so that handles pass between the two without casts.
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;

namespace mtile::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;
using CUevent = CUevent_st*;
using CUgraph = CUgraph_st*;
using CUgraphExec = CUgraphExec_st*;
using CUdevice_attribute = int;
using CUfunction_attribute = int;
using CUstreamCaptureMode = int;
using CUpointer_attribute = int;
// Virtual memory management (symmetric memory): a physical allocation, mapped into a reserved range.
using CUmemGenericAllocationHandle = unsigned long long;
using CUmemAllocationType = int;
using CUmemAllocationHandleType = int;
using CUmemLocationType = int;
using CUmemAccess_flags = int;
using CUmemAllocationGranularity_flags = int;

struct CUmemLocation {
  CUmemLocationType type;
  int id;  // the device ordinal for CU_MEM_LOCATION_TYPE_DEVICE
};
struct CUmemAllocationProp {
  CUmemAllocationType type;
  CUmemAllocationHandleType requestedHandleTypes;
  CUmemLocation location;
  void* win32HandleMetaData;
  struct {
    unsigned char compressionType;
    unsigned char gpuDirectRDMACapable;
    unsigned short usage;
    unsigned char reserved[4];
  } allocFlags;
};
struct CUmemAccessDesc {
  CUmemLocation location;
  CUmemAccess_flags flags;
};
// cuLaunchKernelEx's configuration: the launch of cuLaunchKernel plus attributes, of which mtile
// sets one (programmatic stream serialization, for programmatic dependent launch).
using CUlaunchAttributeID = int;
union CUlaunchAttributeValue {
  char pad[64];
  void* align;  // the header's union holds pointers (an access policy window)
  int programmaticStreamSerializationAllowed;
};
struct CUlaunchAttribute {
  CUlaunchAttributeID id;
  char pad[8 - sizeof(CUlaunchAttributeID)];
  CUlaunchAttributeValue value;
};
struct CUlaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute* attrs;
  unsigned numAttrs;
};

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR = 106;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr CUpointer_attribute CU_POINTER_ATTRIBUTE_CONTEXT = 1;
constexpr CUpointer_attribute CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2;
constexpr CUpointer_attribute CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9;
constexpr CUpointer_attribute CU_POINTER_ATTRIBUTE_RANGE_START_ADDR = 11;
constexpr CUpointer_attribute CU_POINTER_ATTRIBUTE_RANGE_SIZE = 12;
constexpr unsigned CU_MEMORYTYPE_DEVICE = 0x2;
constexpr unsigned CU_STREAM_NON_BLOCKING = 0x1;
constexpr unsigned CU_EVENT_DEFAULT = 0x0;
constexpr CUstreamCaptureMode CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
constexpr CUstreamCaptureMode CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
constexpr CUstreamCaptureMode CU_STREAM_CAPTURE_MODE_RELAXED = 2;
constexpr CUmemAllocationType CU_MEM_ALLOCATION_TYPE_PINNED = 0x1;
constexpr CUmemAllocationHandleType CU_MEM_HANDLE_TYPE_NONE = 0x0;
constexpr CUmemLocationType CU_MEM_LOCATION_TYPE_DEVICE = 0x1;
constexpr CUmemAccess_flags CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 0x3;
constexpr CUmemAllocationGranularity_flags CU_MEM_ALLOC_GRANULARITY_RECOMMENDED = 0x1;
constexpr CUlaunchAttributeID CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

// Tensor maps (cuTensorMapEncodeTiled, for copy_tile): 128 opaque bytes; its enums
// as ints (a data type by its size: copy_tile moves bytes; out-of-bounds fill none is zeros).
struct alignas(128) CUtensorMap {  // cuda.h of CUDA 13 aligns it to 128
  unsigned long long opaque[16];
};
using CUtensorMapDataType = int;
constexpr int CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0, CU_TENSOR_MAP_DATA_TYPE_UINT16 = 1, CU_TENSOR_MAP_DATA_TYPE_UINT32 = 2,
              CU_TENSOR_MAP_DATA_TYPE_UINT64 = 4, CU_TENSOR_MAP_INTERLEAVE_NONE = 0, CU_TENSOR_MAP_SWIZZLE_NONE = 0,
              CU_TENSOR_MAP_SWIZZLE_128B = 3, CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2,
              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0;
using cuuint32_t = uint32_t;
using cuuint64_t = uint64_t;

// Every function mtile calls, as X(exported symbol, signature). Versioned symbols (_v2) are the
// ones cuda.h maps the plain names to; cuEventElapsedTime stays v1, which every driver exports.
#define MTILE_CUDA_DRIVER_FUNCTIONS(X)                                                                             \
  X(cuInit, CUresult(unsigned int))                                                                                \
  X(cuDriverGetVersion, CUresult(int*))                                                                            \
  X(cuGetErrorName, CUresult(CUresult, const char**))                                                              \
  X(cuGetErrorString, CUresult(CUresult, const char**))                                                            \
  X(cuDeviceGetCount, CUresult(int*))                                                                              \
  X(cuDeviceGet, CUresult(CUdevice*, int))                                                                         \
  X(cuDeviceGetName, CUresult(char*, int, CUdevice))                                                               \
  X(cuDeviceGetAttribute, CUresult(int*, CUdevice_attribute, CUdevice))                                            \
  X(cuDevicePrimaryCtxRetain, CUresult(CUcontext*, CUdevice))                                                      \
  X(cuDevicePrimaryCtxRelease_v2, CUresult(CUdevice))                                                              \
  X(cuCtxGetCurrent, CUresult(CUcontext*))                                                                         \
  X(cuCtxSetCurrent, CUresult(CUcontext))                                                                          \
  X(cuModuleLoadData, CUresult(CUmodule*, const void*))                                                            \
  X(cuModuleUnload, CUresult(CUmodule))                                                                            \
  X(cuModuleGetFunction, CUresult(CUfunction*, CUmodule, const char*))                                             \
  X(cuFuncSetAttribute, CUresult(CUfunction, CUfunction_attribute, int))                                           \
  X(cuLaunchKernel, CUresult(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,     \
                             CUstream, void**, void**))                                                            \
  X(cuLaunchKernelEx, CUresult(const CUlaunchConfig*, CUfunction, void**, void**))                                 \
  X(cuMemAlloc_v2, CUresult(CUdeviceptr*, size_t))                                                                 \
  X(cuMemFree_v2, CUresult(CUdeviceptr))                                                                           \
  X(cuMemcpyHtoDAsync_v2, CUresult(CUdeviceptr, const void*, size_t, CUstream))                                    \
  X(cuMemcpyDtoHAsync_v2, CUresult(void*, CUdeviceptr, size_t, CUstream))                                          \
  X(cuMemcpyDtoDAsync_v2, CUresult(CUdeviceptr, CUdeviceptr, size_t, CUstream))                                    \
  X(cuMemsetD8Async, CUresult(CUdeviceptr, unsigned char, size_t, CUstream))                                       \
  X(cuMemGetInfo_v2, CUresult(size_t*, size_t*))                                                                   \
  X(cuPointerGetAttributes, CUresult(unsigned, CUpointer_attribute*, void**, CUdeviceptr))                         \
  X(cuStreamGetCtx, CUresult(CUstream, CUcontext*))                                                                \
  X(cuStreamCreate, CUresult(CUstream*, unsigned))                                                                 \
  X(cuStreamSynchronize, CUresult(CUstream))                                                                       \
  X(cuStreamDestroy_v2, CUresult(CUstream))                                                                        \
  X(cuEventCreate, CUresult(CUevent*, unsigned))                                                                   \
  X(cuEventRecord, CUresult(CUevent, CUstream))                                                                    \
  X(cuEventSynchronize, CUresult(CUevent))                                                                         \
  X(cuEventElapsedTime, CUresult(float*, CUevent, CUevent))                                                        \
  X(cuEventDestroy_v2, CUresult(CUevent))                                                                          \
  X(cuStreamBeginCapture_v2, CUresult(CUstream, CUstreamCaptureMode))                                              \
  X(cuStreamEndCapture, CUresult(CUstream, CUgraph*))                                                              \
  X(cuGraphInstantiateWithFlags, CUresult(CUgraphExec*, CUgraph, unsigned long long))                              \
  X(cuGraphLaunch, CUresult(CUgraphExec, CUstream))                                                                \
  X(cuGraphExecDestroy, CUresult(CUgraphExec))                                                                     \
  X(cuGraphDestroy, CUresult(CUgraph))                                                                             \
  X(cuTensorMapEncodeTiled, CUresult(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,      \
                                     const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, int, int, int, int)) \
  MTILE_CUDA_VMM_FUNCTIONS(X)

// Peer access and virtual memory management (symmetric memory, symmetric_memory.cpp).
#define MTILE_CUDA_VMM_FUNCTIONS(X)                                                                                 \
  X(cuCtxSynchronize, CUresult())                                                                                   \
  X(cuDeviceCanAccessPeer, CUresult(int*, CUdevice, CUdevice))                                                      \
  X(cuCtxEnablePeerAccess, CUresult(CUcontext, unsigned))                                                           \
  X(cuMemGetAllocationGranularity, CUresult(size_t*, const CUmemAllocationProp*, CUmemAllocationGranularity_flags)) \
  X(cuMemAddressReserve, CUresult(CUdeviceptr*, size_t, size_t, CUdeviceptr, unsigned long long))                   \
  X(cuMemAddressFree, CUresult(CUdeviceptr, size_t))                                                                \
  X(cuMemCreate, CUresult(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*, unsigned long long))   \
  X(cuMemRelease, CUresult(CUmemGenericAllocationHandle))                                                           \
  X(cuMemMap, CUresult(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long))              \
  X(cuMemUnmap, CUresult(CUdeviceptr, size_t))                                                                      \
  X(cuMemSetAccess, CUresult(CUdeviceptr, size_t, const CUmemAccessDesc*, size_t))

// The loaded functions; members are named by their exported symbols.
struct DriverApi {
#define MTILE_CUDA_DRIVER_MEMBER(name, signature) std::add_pointer_t<signature> name = nullptr;
  MTILE_CUDA_DRIVER_FUNCTIONS(MTILE_CUDA_DRIVER_MEMBER)
#undef MTILE_CUDA_DRIVER_MEMBER
};

// Loads libcuda.so.1 and calls cuInit(0), once per process. Throws Error saying why the driver
// can't be used (no library, a driver too old for a symbol, cuInit failing e.g. with no device).
const DriverApi& driver();
// Like driver(), but reports the reason instead of throwing.
bool driver_available(std::string* why);
// "CUDA_ERROR_INVALID_VALUE (invalid argument)".
std::string result_text(CUresult r);
// Throws DeviceError "<call> failed: <result_text>" unless r is CUDA_SUCCESS.
void check(CUresult r, const char* call);
// "12.4" from cuDriverGetVersion (the newest CUDA the driver supports).
std::string driver_version();

}  // namespace mtile::cuda

// Calls a driver function and throws Error naming it when it fails: MTILE_CU(cuMemFree_v2, ptr).
#define MTILE_CU(fn, ...) ::mtile::cuda::check(::mtile::cuda::driver().fn(__VA_ARGS__), #fn)
