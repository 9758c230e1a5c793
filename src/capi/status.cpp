// mtile_last_error and the version queries.
#include "capi/status.hpp"

namespace mtile::capi {
namespace {
thread_local std::string last_error;
}  // namespace

int fail(ErrorKind kind, std::string message) {
  try {
    last_error = std::move(message);
  } catch (...) {  // no memory for the message: the status still tells
  }
  switch (kind) {
    case ErrorKind::User: return MTILE_ERROR_USER;
    case ErrorKind::Internal: return MTILE_ERROR_INTERNAL;
    case ErrorKind::Device: return MTILE_ERROR_DEVICE;
  }
  return MTILE_ERROR_INTERNAL;
}

}  // namespace mtile::capi

extern "C" {

int32_t mtile_abi_version(void) {
  return MTILE_ABI_VERSION;
}

const char* mtile_version(void) {
  return MTILE_VERSION;
}

const char* mtile_last_error(void) {
  return mtile::capi::last_error.c_str();
}

const char* mtile_dtype_name(int32_t dtype) {
  switch (dtype) {
    case MTILE_DTYPE_AUTO: return "auto";
    case MTILE_DTYPE_F32: return "f32";
    case MTILE_DTYPE_F16: return "f16";
    case MTILE_DTYPE_BF16: return "bf16";
    case MTILE_DTYPE_U32: return "u32";
    case MTILE_DTYPE_I32: return "i32";
    default: return "?";
  }
}

}  // extern "C"
