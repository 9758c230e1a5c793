// Every kernel's MSL, for Metal 3.0, 3.1 and 3.2, compiled as C++17 against tests/msl_shim: no Metal
// compiler exists on Linux, so this checks that the text is well-formed with Metal's declarations.
// A version older than the kernel needs (msl_version_needed: 3.2 for a fence) must be refused, and
// 3.2 must change nothing but the header of a kernel that 3.1 can express.
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
  std::string name() const {
    std::string v = msl_version_name(version);
    return variant.name + "_msl" + v.replace(1, 1, "_");
  }
};
void PrintTo(const MslCase& c, std::ostream* os) {
  *os << c.name();
}

std::vector<MslCase> cases() {
  std::vector<MslCase> out;
  for (const auto& v : codegen_test::variants(Target::metal("apple9")))
    for (auto version : {MslOptions::Version::V3_0, MslOptions::Version::V3_1, MslOptions::Version::V3_2})
      out.push_back({v, version});
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
  ir::Function f = c.variant.lower();
  MslOptions::Version needed = msl_version_needed(f);
  if (c.version < needed) {
    try {
      emit_msl(f, {.version = c.version});
      ADD_FAILURE() << c.name() << ": Metal " << msl_version_name(c.version) << " was not refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs Metal 3.2"), std::string::npos) << e.what();
    }
    return;
  }
  std::string src = emit_msl(f, {.version = c.version});
  if (c.version == MslOptions::Version::V3_2 && needed < c.version) {
    // The same code as 3.1's, but for the version in the header: no need to compile it again.
    std::string v31 = emit_msl(f, {.version = MslOptions::Version::V3_1});
    auto body = [](const std::string& s) { return s.substr(s.find('\n')); };
    EXPECT_EQ(body(src), body(v31));
    EXPECT_NE(src.find("Metal Shading Language 3.2"), std::string::npos);
    return;
  }
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

// Builds `helper` with the host program `program` (tests/msl_shim/simulate) and runs it: "" when it
// printed "ok", else what went wrong.
std::string simulate(const std::string& helper, const char* program) {
  std::string src = std::string("#include \"simdgroup.hpp\"\n") + helper + "#include \"" + program + "\"\n";
  auto dir = std::filesystem::temp_directory_path();
  auto path = dir / fmt::format("mtile_sim_{}.cpp", getpid());
  auto exe = dir / fmt::format("mtile_sim_{}", getpid());
  std::ofstream(path) << src;
  std::string cmd =
      fmt::format("'{}' -std=c++20 -O1 -pthread -Wall -Wextra -Werror -I '{}/simulate' -I '{}' '{}' -o '{}'", MTILE_CXX,
                  MTILE_MSL_SHIM_DIR, MTILE_INCLUDE_DIR, path.string(), exe.string());
  std::string output;
  int rc = run(cmd, output);
  std::filesystem::remove(path);
  if (rc != 0) return cmd + "\n" + output;
  output.clear();
  rc = run("'" + exe.string() + "'", output);
  std::filesystem::remove(exe);
  return rc == 0 && output == "ok\n" ? "" : output;
}

// The Metal lowering of Mma can't run here, so its helper runs on a simulated simdgroup (32 host
// threads, tests/msl_shim/simulate): given fragments in PTX's layout it must give every lane its
// elements of A B + C.
TEST(MslMmaHelper, GivesEveryLaneItsElementsOfTheProductOnASimulatedSimdgroup) {
  EXPECT_EQ(simulate(kMslMmaPreamble, "run_mma.inc"), "");
}

// load_matrix's helpers: every lane's pairs of four 8 x 8 matrices, plain and transposed.
TEST(MslLoadMatrixHelper, GivesEveryLaneItsPairsOnASimulatedSimdgroup) {
  EXPECT_EQ(simulate(kMslLoadMatrixPreamble, "run_load_matrix.inc"), "");
}

}  // namespace
}  // namespace mtile::codegen
