// Scalar types shared by the IR, the DSL, buffers and the backends.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mtile {

// Who has to act on an error. The CLI exits with 2, 3 and 4 for them.
enum class ErrorKind : uint8_t {
  User,      // a bad request: unknown kernel, malformed shape, trace error, violated contract
  Internal,  // mtile broke its own rules (a pass produced invalid IR): a bug to report
  Device,    // the device or the host ran out of something or failed (driver, memory)
};
const char* error_kind_name(ErrorKind k);  // "user", "internal", "device"

// Every error mtile reports: the message names the kernel and what was wrong.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, ErrorKind kind = ErrorKind::User) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};
// mtile's own fault: a pass broke the IR, generated code did not compile.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& what) : Error(what, ErrorKind::Internal) {}
};
// The device (or the host's memory) failed: a driver call, an allocation.
class DeviceError : public Error {
 public:
  explicit DeviceError(const std::string& what) : Error(what, ErrorKind::Device) {}
};

enum class ScalarType : uint8_t { u32, i32, f32, f16, bf16, boolean };

const char* type_name(ScalarType t);
std::optional<ScalarType> parse_type(std::string_view s);
inline bool is_float(ScalarType t) {
  return t == ScalarType::f32 || t == ScalarType::f16 || t == ScalarType::bf16;
}
inline bool is_integer(ScalarType t) {
  return t == ScalarType::u32 || t == ScalarType::i32;
}
// Bytes one element occupies in a buffer.
size_t storage_bytes(ScalarType t);

// IEEE binary16 and bfloat16 conversions, round to nearest even (NaN stays NaN).
uint16_t f32_to_f16_bits(float f);
float f16_bits_to_f32(uint16_t h);
uint16_t f32_to_bf16_bits(float f);
float bf16_bits_to_f32(uint16_t h);
// The value `f` takes once stored as `t` (identity for f32).
float round_to(ScalarType t, float f);

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace mtile
