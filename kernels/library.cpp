// The standard library, in the order `mtile list` shows it.
#include "kernels/elementwise/elementwise.hpp"
#include "kernels/examples/examples.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/softmax/softmax.hpp"
#include "registry/standard_library.hpp"

namespace mtile::lib {

std::vector<KernelSpec> standard_library() {
  std::vector<KernelSpec> all = {mt_rms_inv_scalar_spec(), mt_rms_norm_spec(),      ffai_rms_norm_residual_spec(),
                                 mt_rms_norm_small_spec(), mt_rms_norm_wide_spec(), rms_norm_residual_spec(),
                                 add_rms_norm_spec(),      softmax_spec(),          vector_add_spec()};
  for (KernelSpec& k : example_specs()) all.push_back(std::move(k));  // the DSL's examples, last
  return all;
}

}  // namespace mtile::lib
