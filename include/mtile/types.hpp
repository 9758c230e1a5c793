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

// Element and value types. Values (in registers) are u32, i32, u64, i64, f32, f16, bf16 and bool;
// f16 and bf16 values are held as the f32 they round to. The 8- and 16-bit integers and the fp8
// formats are memory-only: a load widens them to their value type (u32, i32, f32) and a store
// narrows (integers keep their low bits; fp8 rounds to nearest even and saturates to its largest
// finite value, NaN staying NaN). f8e4m3 is the "fn" variant: no infinities, largest 448.
enum class ScalarType : uint8_t { u32, i32, f32, f16, bf16, boolean, u64, i64, u8, i8, u16, i16, f8e4m3, f8e5m2 };
constexpr size_t kScalarTypeCount = 14;

const char* type_name(ScalarType t);
std::optional<ScalarType> parse_type(std::string_view s);
// Floating formats: f32, f16, bf16, and the memory-only fp8 ones.
inline bool is_float(ScalarType t) {
  return t == ScalarType::f32 || t == ScalarType::f16 || t == ScalarType::bf16 || t == ScalarType::f8e4m3 ||
         t == ScalarType::f8e5m2;
}
inline bool is_integer(ScalarType t) {
  return t == ScalarType::u32 || t == ScalarType::i32 || t == ScalarType::u64 || t == ScalarType::i64 ||
         t == ScalarType::u8 || t == ScalarType::i8 || t == ScalarType::u16 || t == ScalarType::i16;
}
inline bool is_unsigned(ScalarType t) {
  return t == ScalarType::u32 || t == ScalarType::u64 || t == ScalarType::u8 || t == ScalarType::u16;
}
inline bool is_64bit(ScalarType t) {
  return t == ScalarType::u64 || t == ScalarType::i64;
}
// Types a value (not only memory) can have.
inline bool is_value_type(ScalarType t) {
  return static_cast<uint8_t>(t) <= static_cast<uint8_t>(ScalarType::i64);
}
// The type a load of an element of `t` gives (and a store takes).
inline ScalarType value_type(ScalarType t) {
  switch (t) {
    case ScalarType::u8:
    case ScalarType::u16: return ScalarType::u32;
    case ScalarType::i8:
    case ScalarType::i16: return ScalarType::i32;
    case ScalarType::f8e4m3:
    case ScalarType::f8e5m2: return ScalarType::f32;
    default: return t;
  }
}
// Bytes one element occupies in a buffer.
size_t storage_bytes(ScalarType t);

// IEEE binary16 and bfloat16 conversions, round to nearest even (NaN stays NaN).
uint16_t f32_to_f16_bits(float f);
float f16_bits_to_f32(uint16_t h);
uint16_t f32_to_bf16_bits(float f);
float bf16_bits_to_f32(uint16_t h);
// fp8 conversions: round to nearest even, saturating to the largest finite value; NaN stays NaN.
uint8_t f32_to_f8e4m3_bits(float f);
float f8e4m3_bits_to_f32(uint8_t b);
uint8_t f32_to_f8e5m2_bits(float f);
float f8e5m2_bits_to_f32(uint8_t b);
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
