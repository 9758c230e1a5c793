// Every kernel's CUDA C++ compiled by NVRTC for sm_90a with the runtime's options. Needs only the
// toolkit's libnvrtc (no GPU); skipped with the reason where it can't be loaded.
#include <gtest/gtest.h>

#include "backends/cuda/nvrtc.hpp"
#include "codegen/codegen.hpp"
#include "unit/codegen_test_kernels.hpp"

namespace mtile::codegen {
namespace {

class CudaCompileCheck : public ::testing::TestWithParam<codegen_test::Variant> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  }
};

TEST_P(CudaCompileCheck, CompilesWithNvrtcForSm90a) {
  ir::Function f = GetParam().lower();
  std::string entry = cuda_entry_name(f);
  cuda::NvrtcResult r = cuda::nvrtc_compile(emit_cuda(f), entry + ".cu", "sm_90a");  // throws with the log
  EXPECT_GT(r.cubin.size(), 0u);
  EXPECT_NE(std::string(r.cubin.begin(), r.cubin.end()).find(entry), std::string::npos) << "the entry is in the CUBIN";
  EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
}

INSTANTIATE_TEST_SUITE_P(EveryKernel, CudaCompileCheck,
                         ::testing::ValuesIn(codegen_test::variants(Target::cuda("sm_90a"))),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mtile::codegen
