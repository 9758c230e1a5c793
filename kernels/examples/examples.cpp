// The examples family, in the order docs/writing-kernels.md shows them.
#include "kernels/examples/examples.hpp"

namespace mtile::lib {

std::vector<KernelSpec> example_specs() {
  return {example_masked_scale_spec(), example_scale_rows_spec(), example_scale_bias_spec(),  example_histogram_spec(),
          example_scan_rows_spec(),    example_mish_spec(),       example_dequant_fp8_spec(), example_convert_spec(),
          example_q_scale_spec(),      example_transpose_spec(),  example_row_rms_spec(),     example_mma_spec(),
          example_reverse_rows_spec()};
}

}  // namespace mtile::lib
