// The code the documentation shows is the code that builds: a fenced block preceded by
//   <!-- snippet: kernels/examples/masked.cpp masked_scale -->
// must equal the lines of that file between `// doc-snippet: masked_scale` and
// `// doc-snippet-end` (with the marker's indentation removed). A line of the block that is only
// `...` stands for any number of source lines. Every snippet region of kernels/examples must be
// shown in docs/writing-kernels.md, so each example kernel is taught somewhere.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kRoot = MTILE_SOURCE_DIR;

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A fenced block of a doc that names its source.
struct Shown {
  std::string doc;  // relative path
  size_t line;      // of the marker, 1-based
  std::string file, region;
  std::vector<std::string> lines;
};

std::vector<Shown> shown_snippets(const fs::path& doc) {
  std::vector<std::string> lines = read_lines(doc);
  std::vector<Shown> out;
  const std::string open = "<!-- snippet: ";
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string l = trim(lines[i]);
    if (l.rfind(open, 0) != 0) continue;
    std::istringstream words(l.substr(open.size()));
    Shown s{fs::relative(doc, kRoot).string(), i + 1, "", "", {}};
    words >> s.file >> s.region;
    if (i + 1 >= lines.size() || trim(lines[i + 1]).rfind("```", 0) != 0) {
      ADD_FAILURE() << s.doc << ":" << s.line << ": a snippet marker must be followed by a ``` block";
      continue;
    }
    size_t j = i + 2;
    for (; j < lines.size() && trim(lines[j]) != "```"; ++j) s.lines.push_back(lines[j]);
    out.push_back(std::move(s));
    i = j;
  }
  return out;
}

// The region `name` of a source file, dedented by its marker's indentation; nullopt if absent.
std::optional<std::vector<std::string>> source_region(const fs::path& file, const std::string& name) {
  std::vector<std::string> lines = read_lines(file);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]) != "// doc-snippet: " + name) continue;
    size_t indent = lines[i].find_first_not_of(" ");
    std::vector<std::string> out;
    for (size_t j = i + 1; j < lines.size() && trim(lines[j]) != "// doc-snippet-end"; ++j)
      out.push_back(lines[j].size() >= indent ? lines[j].substr(indent) : trim(lines[j]));
    return out;
  }
  return std::nullopt;
}

// Regions named in a file: the words after each `// doc-snippet: `.
std::vector<std::string> region_names(const fs::path& file) {
  std::vector<std::string> out;
  for (const std::string& l : read_lines(file))
    if (trim(l).rfind("// doc-snippet: ", 0) == 0) out.push_back(trim(l).substr(16));
  return out;
}

// Whether `shown` matches `source`, `...` lines matching any run of source lines; where it does
// not, `why` says at which line of the snippet.
bool matches(const std::vector<std::string>& shown, size_t i, const std::vector<std::string>& source, size_t j,
             std::string* why) {
  if (i == shown.size()) {
    if (j == source.size()) return true;
    if (why) *why = fmt::format("the source goes on after the snippet's end: \"{}\"", source[j]);
    return false;
  }
  if (trim(shown[i]) == "...") {
    for (size_t k = j; k <= source.size(); ++k)
      if (matches(shown, i + 1, source, k, nullptr)) return true;
    if (why) *why = fmt::format("nothing in the source matches what follows the `...` at snippet line {}", i + 1);
    return false;
  }
  if (j < source.size() && shown[i] == source[j]) return matches(shown, i + 1, source, j + 1, why);
  if (why)
    *why = fmt::format("snippet line {} is \"{}\", the source has \"{}\"", i + 1, shown[i],
                       j < source.size() ? source[j] : "(the region's end)");
  return false;
}

std::vector<fs::path> docs() {
  std::vector<fs::path> out = {kRoot / "README.md"};
  for (const auto& e : fs::directory_iterator(kRoot / "docs"))
    if (e.path().extension() == ".md") out.push_back(e.path());
  return out;
}

}  // namespace

TEST(DocSnippets, EveryMarkedSnippetIsTheSourceItNames) {
  int checked = 0;
  for (const fs::path& doc : docs()) {
    for (const Shown& s : shown_snippets(doc)) {
      SCOPED_TRACE(fmt::format("{}:{} shows {} ({})", s.doc, s.line, s.file, s.region));
      auto source = source_region(kRoot / s.file, s.region);
      ASSERT_TRUE(source.has_value()) << "no `// doc-snippet: " << s.region << "` region in " << s.file;
      std::string why;
      EXPECT_TRUE(matches(s.lines, 0, *source, 0, &why))
          << "the snippet has drifted from the source: " << why << "\n(copy the region into the doc again)";
      ++checked;
    }
  }
  EXPECT_GE(checked, 13) << "the README's seed kernel, the writing-kernels guide's seed kernel and each example";
}

TEST(DocSnippets, EveryExampleKernelIsShownInTheGuide) {
  std::vector<std::string> shown;
  for (const Shown& s : shown_snippets(kRoot / "docs" / "writing-kernels.md")) shown.push_back(s.file + " " + s.region);
  int regions = 0;
  for (const auto& e : fs::directory_iterator(kRoot / "kernels" / "examples")) {
    if (e.path().extension() != ".cpp") continue;
    for (const std::string& name : region_names(e.path())) {
      std::string key = fs::relative(e.path(), kRoot).string() + " " + name;
      EXPECT_NE(std::find(shown.begin(), shown.end(), key), shown.end())
          << key << " is not shown in docs/writing-kernels.md (<!-- snippet: " << key << " -->)";
      ++regions;
    }
  }
  EXPECT_GE(regions, 11);
}

TEST(DocSnippets, TheComparisonCatchesDrift) {
  std::vector<std::string> source = {"Val a = load(x[i]);", "Val b = a * 2.0f;", "store(y[i], b);"};
  std::string why;
  EXPECT_TRUE(matches(source, 0, source, 0, &why)) << why;
  EXPECT_TRUE(matches({"Val a = load(x[i]);", "...", "store(y[i], b);"}, 0, source, 0, &why)) << why;
  EXPECT_TRUE(matches({"...", "store(y[i], b);"}, 0, source, 0, &why)) << why;
  EXPECT_FALSE(matches({"Val a = load(x[i]);", "Val b = a * 3.0f;", "store(y[i], b);"}, 0, source, 0, &why));
  EXPECT_EQ(why, "snippet line 2 is \"Val b = a * 3.0f;\", the source has \"Val b = a * 2.0f;\"");
  EXPECT_FALSE(matches({"Val a = load(x[i]);"}, 0, source, 0, &why));
  EXPECT_EQ(why, "the source goes on after the snippet's end: \"Val b = a * 2.0f;\"");
  EXPECT_FALSE(matches({"...", "store(z[i], b);"}, 0, source, 0, &why));
}
