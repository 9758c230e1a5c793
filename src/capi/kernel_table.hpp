// What an mtile_kernel handle points to: a registered Kernel with what the C ABI reads of it
// (texts, dims, parameters, the element types of each variant), made once per kernel and kept for
// the process, as the registry keeps kernels.
#pragma once
#include <array>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mtile/mtile.h"
#include "mtile/registry.hpp"

struct mtile_kernel {
  explicit mtile_kernel(mtile::Kernel k);

  mtile::Kernel kernel;
  std::array<std::string, 6> texts;   // by mtile_text
  std::vector<size_t> tensor_params;  // indices of the tensor parameters, in order
  std::vector<size_t> scalar_params;  // indices of the scalar parameters, in order
  std::vector<int32_t> dtypes;        // mtile_dtype codes of the variants

  // The element type of every parameter in variant `t`, from its trace (made on first use).
  const std::vector<mtile::ScalarType>& param_types(mtile::ScalarType t) const;

 private:
  mutable std::once_flag traced_;
  mutable std::array<std::vector<mtile::ScalarType>, mtile::kScalarTypeCount> param_types_;  // by ScalarType
};

namespace mtile::capi {

// The handle of every registered kernel, in registration order (the table follows the registry).
const mtile_kernel& kernel_at(size_t index);                // throws Error when out of range
const mtile_kernel& kernel_named(const std::string& name);  // throws Error listing known names
size_t kernel_count();

int32_t abi_dtype(ScalarType t);
// The ScalarType of an mtile_dtype code; nothing for AUTO or an unknown code.
std::optional<ScalarType> scalar_type(int32_t dtype);
// Error "<what>: <dtype> is not an element type (mtile_dtype: 1 f32, ...)".
[[noreturn]] void bad_dtype(const std::string& what, int32_t dtype);

}  // namespace mtile::capi
