// The standard library, in the order `mtile list` shows it.
#include <fmt/format.h>

#include "kernels/elementwise/elementwise.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/softmax/softmax.hpp"

namespace mtile {

const std::vector<KernelSpec>& kernels() {
  static const std::vector<KernelSpec> all = [] {
    using namespace mtile::lib;
    return std::vector<KernelSpec>{
        mt_rms_inv_scalar_spec(), mt_rms_norm_spec(),      ffai_rms_norm_residual_spec(),
        mt_rms_norm_small_spec(), mt_rms_norm_wide_spec(), rms_norm_residual_spec(),
        softmax_spec(),           vector_add_spec(),
    };
  }();
  return all;
}

const KernelSpec& find_kernel(const std::string& name) {
  for (const KernelSpec& k : kernels())
    if (k.name() == name) return k;
  std::string known;
  for (const KernelSpec& k : kernels()) known += (known.empty() ? "" : ", ") + k.name();
  throw Error(fmt::format("unknown kernel '{}' (known: {})", name, known));
}

}  // namespace mtile
