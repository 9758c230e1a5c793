// Every kernel's MSL, for Metal 3.0 and 3.1, compiled as C++17 against tests/msl_shim: no Metal
// compiler exists on Linux, so this checks that the text is well-formed with Metal's declarations.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "codegen/codegen.hpp"
#include "codegen/msl/msl_preamble.hpp"
#include "unit/codegen_test_kernels.hpp"

namespace mtile::codegen {
namespace {

struct MslCase {
  codegen_test::Variant variant;
  MslOptions::Version version;
  std::string name() const { return variant.name + (version == MslOptions::Version::V3_0 ? "_msl3_0" : "_msl3_1"); }
};
void PrintTo(const MslCase& c, std::ostream* os) {
  *os << c.name();
}

std::vector<MslCase> cases() {
  std::vector<MslCase> out;
  for (const auto& v : codegen_test::variants(Target::metal("apple9")))
    for (auto version : {MslOptions::Version::V3_0, MslOptions::Version::V3_1}) out.push_back({v, version});
  return out;
}

// Runs `cmd`; returns its exit status and its stdout and stderr together.
int run(const std::string& cmd, std::string& output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  return pclose(p);
}

class MslCompileCheck : public ::testing::TestWithParam<MslCase> {};

TEST_P(MslCompileCheck, CompilesAsCxx17AgainstTheShim) {
  const MslCase& c = GetParam();
  std::string src = emit_msl(c.variant.lower(), {.version = c.version});
  auto path = std::filesystem::temp_directory_path() / fmt::format("mtile_{}_{}.metal", c.name(), getpid());
  std::ofstream(path) << src;
  // Warnings other than Metal's attributes count as failures too: they point at sloppy code.
  std::string cmd =
      fmt::format("'{}' -x c++ -std=c++17 -fsyntax-only -Wall -Wextra -Werror -Wno-attributes -I '{}' '{}'", MTILE_CXX,
                  MTILE_MSL_SHIM_DIR, path.string());
  std::string output;
  int rc = run(cmd, output);
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << cmd << "\n" << output << "\nsource:\n" << src;
}

INSTANTIATE_TEST_SUITE_P(EveryKernel, MslCompileCheck, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name(); });

// The Metal lowering of Mma can't run here, so its helper runs on a simulated simdgroup (32 host
// threads, tests/msl_shim/simulate): given fragments in PTX's layout it must give every lane its
// elements of A B + C.
TEST(MslMmaHelper, GivesEveryLaneItsElementsOfTheProductOnASimulatedSimdgroup) {
  std::string src = std::string("#include \"simdgroup.hpp\"\n") + kMslMmaPreamble + "#include \"run_mma.inc\"\n";
  auto dir = std::filesystem::temp_directory_path();
  auto path = dir / fmt::format("mtile_mma_sim_{}.cpp", getpid());
  auto exe = dir / fmt::format("mtile_mma_sim_{}", getpid());
  std::ofstream(path) << src;
  std::string cmd =
      fmt::format("'{}' -std=c++20 -O1 -pthread -Wall -Wextra -Werror -I '{}/simulate' -I '{}' '{}' -o '{}'", MTILE_CXX,
                  MTILE_MSL_SHIM_DIR, MTILE_INCLUDE_DIR, path.string(), exe.string());
  std::string output;
  int rc = run(cmd, output);
  std::filesystem::remove(path);
  ASSERT_EQ(rc, 0) << cmd << "\n" << output;
  output.clear();
  rc = run("'" + exe.string() + "'", output);
  std::filesystem::remove(exe);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "ok\n");
}

}  // namespace
}  // namespace mtile::codegen
