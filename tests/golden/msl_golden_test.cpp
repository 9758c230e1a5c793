// Golden MSL: tests/golden/msl/<kernel>.<dtype>.metal holds emit_msl of every registered kernel
// and dtype, lowered by passes::run_pipeline with no baked constexprs (default MslOptions, or Metal
// 3.2 for a kernel that needs it: msl_version_needed).
// MTILE_REGEN_GOLDEN=1 rewrites the files (and deletes stale ones) instead of comparing.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "codegen/codegen.hpp"
#include "mtile/registry.hpp"
#include "passes/pipeline.hpp"

namespace mtile::codegen {
namespace {

namespace fs = std::filesystem;

bool regenerating() {
  const char* v = std::getenv("MTILE_REGEN_GOLDEN");
  return v && std::string(v) == "1";
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A unified diff (3 lines of context) of two texts, from their longest common subsequence.
std::string diff(const std::string& want, const std::string& got) {
  std::vector<std::string> a = lines(want), b = lines(got);
  size_t n = a.size(), m = b.size();
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  struct Line {
    char tag;
    std::string text;
    size_t ai, bi;
  };
  std::vector<Line> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j])
      ops.push_back({' ', a[i], i++, j++});
    else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]))
      ops.push_back({'-', a[i], i++, j});
    else
      ops.push_back({'+', b[j], i, j++});
  }
  std::string out;
  for (size_t k = 0; k < ops.size();) {
    if (ops[k].tag == ' ') {
      ++k;
      continue;
    }
    // A hunk runs to its last change with fewer than 7 unchanged lines after the one before.
    size_t start = k >= 3 ? k - 3 : 0, last = k;
    for (size_t x = k; x < ops.size() && x <= last + 6; ++x)
      if (ops[x].tag != ' ') last = x;
    size_t end = std::min(ops.size(), last + 4);
    out += fmt::format("@@ -{} +{} @@\n", ops[start].ai + 1, ops[start].bi + 1);
    for (size_t x = start; x < end; ++x) out += fmt::format("{}{}\n", ops[x].tag, ops[x].text);
    k = end;
  }
  return out;
}

struct Golden {
  Kernel kernel;
  ScalarType dtype;
  std::string file() const { return fmt::format("{}.{}.metal", kernel->name(), type_name(dtype)); }
};
void PrintTo(const Golden& g, std::ostream* os) {
  *os << g.file();
}

std::vector<Golden> goldens() {
  std::vector<Golden> out;
  for (const Kernel& k : kernels())
    for (ScalarType t : k->def.dtypes()) out.push_back({k, t});
  return out;
}

class MslGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(MslGolden, MatchesItsFile) {
  const Golden& g = GetParam();
  Target metal = Target::metal("apple9");
  Config config = resolve(g.kernel.spec(), g.kernel->example_shape, metal).config;
  ir::Function f = passes::run_pipeline(g.kernel->def.trace(g.dtype, config), metal);
  MslOptions opts;
  opts.version = std::max(opts.version, msl_version_needed(f));
  std::string got = emit_msl(f, opts);
  fs::path path = fs::path(MTILE_GOLDEN_DIR) / g.file();
  if (regenerating()) {
    std::ofstream(path, std::ios::binary) << got;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "no golden file " << path.string()
                  << "; create it with MTILE_REGEN_GOLDEN=1 (tests/golden/msl/README.md)";
  std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(want == got) << "the MSL of " << g.kernel.name() << "<" << type_name(g.dtype) << "> differs from "
                           << path.string() << " (- golden, + emitted now):\n"
                           << diff(want, got)
                           << "If the change is intended, regenerate: see tests/golden/msl/README.md";
}

INSTANTIATE_TEST_SUITE_P(EveryKernel, MslGolden, ::testing::ValuesIn(goldens()), [](const auto& info) {
  return info.param.kernel->name() + "_" + type_name(info.param.dtype);
});

TEST(MslGoldenFiles, NoneIsStale) {
  std::set<std::string> wanted;
  for (const Golden& g : goldens()) wanted.insert(g.file());
  for (const auto& e : fs::directory_iterator(MTILE_GOLDEN_DIR)) {
    std::string name = e.path().filename().string();
    if (e.path().extension() != ".metal" || wanted.count(name)) continue;
    if (regenerating())
      fs::remove(e.path());
    else
      ADD_FAILURE() << e.path().string()
                    << " belongs to no registered kernel and dtype; MTILE_REGEN_GOLDEN=1 removes it";
  }
}

}  // namespace
}  // namespace mtile::codegen
