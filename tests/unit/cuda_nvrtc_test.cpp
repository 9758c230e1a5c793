// NVRTC compiles hand-written kernels to CUBINs and reports errors with the numbered source.
// Needs only the toolkit's libnvrtc (no GPU); skipped with the reason where it can't be loaded.
#include <gtest/gtest.h>

#include <regex>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/nvrtc.hpp"
#include "mtile/dsl.hpp"
#include "passes/pipeline.hpp"

namespace mtile::cuda {
namespace {

// `twice` has no __device__: it compiles only because of -default-device.
constexpr const char* kVectorAdd = R"(float twice(float x) { return 2.0f * x; }
extern "C" __global__ void vector_add(const float* a, const float* b, float* c, unsigned int n) {
  unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + twice(b[i]);
}
)";

class NvrtcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!nvrtc_available(&why)) GTEST_SKIP() << "NVRTC can't be loaded: " << why;
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST_F(NvrtcTest, CompilesToACubinForSm90a) {
  NvrtcResult r = nvrtc_compile(kVectorAdd, "vector_add.cu", "sm_90a");
  ASSERT_GE(r.cubin.size(), 64u);
  EXPECT_EQ(std::string(r.cubin.data(), 4),
            "\x7f"
            "ELF")
      << "a CUBIN is an ELF file";
  EXPECT_TRUE(contains(std::string(r.cubin.begin(), r.cubin.end()), "vector_add")) << "it holds the kernel";
  EXPECT_EQ(r.options, nvrtc_options("sm_90a"));
  EXPECT_EQ(r.options, (std::vector<std::string>{"-std=c++17", "--gpu-architecture=sm_90a", "-default-device"}));
  for (const auto& o : r.options) EXPECT_FALSE(contains(o, "fast")) << o;
}

TEST_F(NvrtcTest, CompilesForAnotherArch) {
  NvrtcResult r = nvrtc_compile(kVectorAdd, "vector_add.cu", "sm_80");
  EXPECT_EQ(std::string(r.cubin.data(), 4),
            "\x7f"
            "ELF");
  EXPECT_NE(r.cubin, nvrtc_compile(kVectorAdd, "vector_add.cu", "sm_90a").cubin);
}

TEST_F(NvrtcTest, SyntaxErrorShowsTheLogAndTheNumberedSource) {
  const std::string src =
      "// line 1\n"
      "// line 2\n"
      "extern \"C\" __global__ void broken(float* x) {\n"
      "  float y = 1.0f\n"  // line 4: no semicolon
      "  x[threadIdx.x] = y;\n"
      "}\n"
      "// line 7\n"
      "// line 8\n"
      "// line 9\n";
  try {
    nvrtc_compile(src, "broken.cu", "sm_90a");
    FAIL() << "a syntax error compiled";
  } catch (const Error& e) {
    std::string msg = e.what();
    SCOPED_TRACE(msg);
    EXPECT_TRUE(contains(msg, "broken.cu")) << "names the program";
    EXPECT_TRUE(contains(msg, "sm_90a")) << "names the arch";
    EXPECT_TRUE(contains(msg, "broken.cu(5): error")) << "has NVRTC's log";
    EXPECT_TRUE(contains(msg, ">     5 |   x[threadIdx.x] = y;")) << "marks the line the log names";
    EXPECT_TRUE(contains(msg, "4 |   float y = 1.0f")) << "with the lines around it";
    EXPECT_FALSE(contains(msg, "// line 9")) << "and not the whole file";
  }
}

TEST_F(NvrtcTest, BadOptionValueIsAnError) {
  EXPECT_THROW(nvrtc_compile(kVectorAdd, "vector_add.cu", "sm_1"), Error);
}

TEST_F(NvrtcTest, VersionIsMajorDotMinor) {
  EXPECT_TRUE(std::regex_match(nvrtc_version(), std::regex(R"(\d+\.\d+)"))) << nvrtc_version();
}

void scale(dsl::In<dsl::bf16> x, dsl::Out<dsl::bf16> y, dsl::Constexpr n) {
  using namespace dsl;
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], (load(x[i]).cast<f32>() * 2.0f).cast<bf16>()); });
}

TEST_F(NvrtcTest, CompilesATracedKernelWithoutADevice) {
  auto def = dsl::define_kernel("scale", ir::Mode::Elementwise, {"x", "y", "n"}, &scale, ScalarType::bf16);
  ir::Function f = passes::run_pipeline(def.trace(ScalarType::bf16), Target::cpu());
  NvrtcResult r = compile_for_arch(f, "sm_90a");
  EXPECT_EQ(std::string(r.cubin.data(), 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(r.options, nvrtc_options("sm_90a"));
}

TEST(NvrtcArch, FollowsComputeCapability) {
  EXPECT_EQ(arch_for(9, 0), "sm_90a");
  EXPECT_EQ(arch_for(8, 0), "sm_80");
  EXPECT_EQ(arch_for(8, 9), "sm_89");
  EXPECT_EQ(arch_for(10, 0), "sm_100");
  EXPECT_EQ(arch_for(12, 0), "sm_120");
}

TEST(NvrtcExcerpt, ShowsMentionedLinesWithContext) {
  std::string src;
  for (int i = 1; i <= 12; ++i) src += "line" + std::to_string(i) + "\n";
  std::string log = "k.cu(2): error: one\nk.cu(10): warning: two\nk.cu(99): error: past the end\n";
  std::string expected =
      "      1 | line1\n"
      ">     2 | line2\n"
      "      3 | line3\n"
      "      4 | line4\n"
      "  ...\n"
      "      8 | line8\n"
      "      9 | line9\n"
      ">    10 | line10\n"
      "     11 | line11\n"
      "     12 | line12\n";
  EXPECT_EQ(source_excerpt(src, log), expected);
  EXPECT_EQ(source_excerpt(src, "nvrtc: error: invalid value for --gpu-architecture"), "");
  EXPECT_EQ(source_excerpt(src, ""), "");
}

}  // namespace
}  // namespace mtile::cuda
