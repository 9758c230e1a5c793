// The module cache's key and disk layer, with fake payloads: no GPU and no NVRTC needed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "backends/cuda/module_cache.hpp"

namespace mtile::cuda {
namespace {

namespace fs = std::filesystem;

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ~ScopedEnv() {
    for (auto& [name, old] : saved_)
      if (old)
        setenv(name.c_str(), old->c_str(), 1);
      else
        unsetenv(name.c_str());
  }
  void set(const std::string& name, const char* value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value)
      setenv(name.c_str(), value, 1);
    else
      unsetenv(name.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

class ModuleCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> serial{0};
    dir_ =
        fs::temp_directory_path() / ("mtile_cache_test_" + std::to_string(getpid()) + "_" + std::to_string(serial++));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CacheConfig config() const { return {true, dir_}; }
  static CacheKey key(uint64_t ir_hash) {
    CacheKeyInputs in = inputs();
    in.ir_hash = ir_hash;
    return cache_key(in);
  }
  static CacheKeyInputs inputs() {
    CacheKeyInputs in;
    in.ir_hash = 0x1234;
    in.dtype = ScalarType::bf16;
    in.source_hash = 0x5678;
    in.entry = "rms_norm_bf16";
    in.arch = "sm_90a";
    in.options = {"-std=c++17", "--gpu-architecture=sm_90a", "-default-device"};
    in.nvrtc_version = "13.0";
    return in;
  }
  static std::vector<char> payload(size_t n, char seed) {
    std::vector<char> p(n);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(seed + i * 7);
    return p;
  }
  std::vector<char> file_bytes(const fs::path& p) const {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void write_bytes(const fs::path& p, const std::vector<char>& bytes) const {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    if (fs::exists(dir_))
      for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    return names;
  }

  fs::path dir_;
};

TEST_F(ModuleCacheTest, KeyIsStable) {
  CacheKey a = cache_key(inputs()), b = cache_key(inputs());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.hex(), b.hex());
  EXPECT_EQ(a.hex().size(), 32u);
  EXPECT_EQ(a.hex().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_FALSE(std::string(mtile_version()).empty());
  EXPECT_EQ(CacheKeyInputs{}.mtile_version, mtile_version());
}

TEST_F(ModuleCacheTest, KeyChangesWithEveryInput) {
  std::vector<std::pair<std::string, CacheKeyInputs>> variants;
  auto vary = [&](const std::string& what, auto change) {
    CacheKeyInputs in = inputs();
    change(in);
    variants.emplace_back(what, in);
  };
  vary("nothing", [](CacheKeyInputs&) {});
  vary("ir hash", [](CacheKeyInputs& in) { in.ir_hash ^= 1; });
  vary("dtype", [](CacheKeyInputs& in) { in.dtype = ScalarType::f16; });
  vary("source hash", [](CacheKeyInputs& in) { in.source_hash ^= 1; });
  vary("entry", [](CacheKeyInputs& in) { in.entry = "rms_norm_f16"; });
  vary("arch", [](CacheKeyInputs& in) { in.arch = "sm_80"; });
  vary("an option", [](CacheKeyInputs& in) { in.options[1] = "--gpu-architecture=sm_80"; });
  vary("an extra option", [](CacheKeyInputs& in) { in.options.push_back("-lineinfo"); });
  vary("option order", [](CacheKeyInputs& in) { std::swap(in.options[0], in.options[2]); });
  vary("options split differently", [](CacheKeyInputs& in) {
    in.options = {"-std=c++17 --gpu-architecture=sm_90a", "-default-device"};
  });
  vary("nvrtc version", [](CacheKeyInputs& in) { in.nvrtc_version = "12.8"; });
  vary("mtile version", [](CacheKeyInputs& in) { in.mtile_version = "99.0.0"; });
  std::map<std::string, std::string> seen;  // hex -> what
  for (const auto& [what, in] : variants) {
    auto [it, fresh] = seen.emplace(cache_key(in).hex(), what);
    EXPECT_TRUE(fresh) << "changing " << what << " gives the same key as changing " << it->second;
  }
}

TEST_F(ModuleCacheTest, ConfigFromEnvironment) {
  ScopedEnv env;
  env.set("MTILE_CACHE", nullptr);
  env.set("MTILE_CACHE_DIR", "/tmp/a");
  env.set("XDG_CACHE_HOME", "/tmp/x");
  env.set("HOME", "/tmp/h");
  EXPECT_TRUE(CacheConfig::from_env().disk);
  EXPECT_EQ(CacheConfig::from_env().dir, fs::path("/tmp/a"));
  env.set("MTILE_CACHE_DIR", nullptr);
  EXPECT_EQ(CacheConfig::from_env().dir, fs::path("/tmp/x/mtile"));
  env.set("XDG_CACHE_HOME", "");
  EXPECT_EQ(CacheConfig::from_env().dir, fs::path("/tmp/h/.cache/mtile"));
  env.set("HOME", nullptr);
  EXPECT_FALSE(CacheConfig::from_env().disk) << "no directory to use";
  env.set("MTILE_CACHE_DIR", "/tmp/a");
  env.set("MTILE_CACHE", "off");
  EXPECT_FALSE(CacheConfig::from_env().disk);
}

TEST_F(ModuleCacheTest, WritesAtomicallyAndReadsBack) {
  ModuleCache cache(config());
  std::vector<char> p = payload(1000, 3);
  ASSERT_TRUE(cache.write_file(key(1), p));
  EXPECT_EQ(cache.read_file(key(1)), p);
  EXPECT_EQ(fs::file_size(cache.file_path(key(1))), ModuleCache::kHeaderBytes + p.size());
  EXPECT_EQ(files(), std::vector<std::string>{key(1).hex() + ".cubin"}) << "no temporary file is left behind";
  // A second write replaces the file whole.
  std::vector<char> q = payload(10, 9);
  ASSERT_TRUE(cache.write_file(key(1), q));
  EXPECT_EQ(cache.read_file(key(1)), q);
  EXPECT_EQ(cache.stats().disk_writes, 2u);
  EXPECT_EQ(cache.stats().corrupt_files, 0u);
  EXPECT_EQ(files().size(), 1u);
}

TEST_F(ModuleCacheTest, ReadersNeverSeeAPartialFile) {
  ModuleCache writer(config()), reader(config());
  const std::vector<char> a = payload(200000, 1), b = payload(30000, 2);
  ASSERT_TRUE(writer.write_file(key(1), a));
  std::atomic<bool> done{false};
  std::thread t([&] {
    for (int i = 0; i < 100; ++i) writer.write_file(key(1), i % 2 ? a : b);
    done = true;
  });
  int reads = 0, bad = 0;
  while (!done || reads < 10) {
    auto got = reader.read_file(key(1));
    bad += !got || (*got != a && *got != b);
    ++reads;
  }
  t.join();
  EXPECT_EQ(bad, 0) << "of " << reads << " reads";
  EXPECT_EQ(reader.stats().corrupt_files, 0u);
  EXPECT_EQ(writer.stats().write_failures, 0u);
  EXPECT_EQ(files().size(), 1u);
}

TEST_F(ModuleCacheTest, CorruptFilesAreDetectedDeletedAndRebuilt) {
  const std::vector<char> p = payload(4096, 5);
  ModuleCache writer(config());
  ASSERT_TRUE(writer.write_file(key(1), p));
  const fs::path path = writer.file_path(key(1));
  const std::vector<char> good = file_bytes(path);

  auto damaged = [&](auto damage) {
    std::vector<char> bytes = good;
    damage(bytes);
    return bytes;
  };
  std::vector<std::pair<std::string, std::vector<char>>> cases = {
      {"empty", {}},
      {"half a header", damaged([](auto& b) { b.resize(20); })},
      {"header only", damaged([](auto& b) { b.resize(ModuleCache::kHeaderBytes); })},
      {"truncated payload", damaged([](auto& b) { b.pop_back(); })},
      {"appended bytes", damaged([](auto& b) { b.push_back('x'); })},
      {"flipped payload bit", damaged([](auto& b) { b[ModuleCache::kHeaderBytes + 100] ^= 1; })},
      {"bad magic", damaged([](auto& b) { b[0] = 'X'; })},
      {"other format version", damaged([](auto& b) { b[8] = 99; })},
      {"other key", damaged([](auto& b) { b[20] ^= 1; })},
      {"wrong length field", damaged([](auto& b) { b[32] ^= 1; })},
      {"wrong checksum field", damaged([](auto& b) { b[40] ^= 1; })},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    write_bytes(path, bytes);
    ModuleCache cache(config());
    EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
    EXPECT_FALSE(fs::exists(path)) << "a bad file is deleted";
    EXPECT_EQ(cache.stats().corrupt_files, 1u);

    write_bytes(path, bytes);
    ModuleCache rebuilding(config());
    int builds = 0;
    auto got = rebuilding.get_or_build(key(1), [&] {
      ++builds;
      return p;
    });
    EXPECT_EQ(*got, p);
    EXPECT_EQ(builds, 1);
    EXPECT_EQ(file_bytes(path), good) << "rebuilt and written again";
  }
}

TEST_F(ModuleCacheTest, MemoryThenDiskThenBuild) {
  const std::vector<char> p = payload(100, 7);
  int builds = 0;
  auto build = [&] {
    ++builds;
    return p;
  };
  {
    ModuleCache first(config());
    EXPECT_EQ(*first.get_or_build(key(1), build), p);
    EXPECT_EQ(*first.get_or_build(key(1), build), p);
    CacheStats s = first.stats();
    EXPECT_EQ(s.compiles, 1u);
    EXPECT_EQ(s.memory_hits, 1u);
    EXPECT_EQ(s.disk_hits, 0u);
    EXPECT_EQ(s.disk_writes, 1u);
  }
  ModuleCache second(config());  // as a second process would
  EXPECT_EQ(*second.get_or_build(key(1), build), p);
  EXPECT_EQ(builds, 1) << "the second instance finds the module on disk";
  EXPECT_EQ(second.stats().disk_hits, 1u);
  EXPECT_EQ(second.stats().compiles, 0u);
  // Another key is built.
  second.get_or_build(key(2), build);
  EXPECT_EQ(builds, 2);
}

TEST_F(ModuleCacheTest, CacheOffKeepsNothingOnDisk) {
  ScopedEnv env;
  env.set("MTILE_CACHE", "off");
  env.set("MTILE_CACHE_DIR", dir_.c_str());
  int builds = 0;
  auto build = [&] {
    ++builds;
    return payload(10, 1);
  };
  ModuleCache first, second;  // from the environment
  EXPECT_FALSE(first.config().disk);
  first.get_or_build(key(1), build);
  first.get_or_build(key(1), build);
  EXPECT_EQ(builds, 1) << "memory still caches";
  second.get_or_build(key(1), build);
  EXPECT_EQ(builds, 2) << "nothing was kept on disk";
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_EQ(second.stats().disk_hits + second.stats().disk_writes + second.stats().write_failures, 0u);
}

TEST_F(ModuleCacheTest, UnwritableDirectoryIsNotFatal) {
  fs::create_directories(dir_);
  write_bytes(dir_ / "file", {'x'});
  ModuleCache cache({true, dir_ / "file" / "cache"});  // a directory can't be made under a file
  int builds = 0;
  auto got = cache.get_or_build(key(1), [&] {
    ++builds;
    return payload(10, 1);
  });
  EXPECT_EQ(*got, payload(10, 1));
  EXPECT_EQ(cache.stats().write_failures, 1u);
  std::string why;
  EXPECT_FALSE(cache.write_file(key(1), payload(10, 1), &why));
  EXPECT_NE(why.find("can't create"), std::string::npos) << why;
  cache.get_or_build(key(1), [&] {
    ++builds;
    return payload(10, 1);
  });
  EXPECT_EQ(builds, 1) << "still cached in memory";
}

TEST_F(ModuleCacheTest, FailedBuildCachesNothing) {
  ModuleCache cache(config());
  EXPECT_THROW(cache.get_or_build(key(1), []() -> std::vector<char> { throw Error("no compiler"); }), Error);
  int builds = 0;
  cache.get_or_build(key(1), [&] {
    ++builds;
    return payload(10, 1);
  });
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(cache.stats().compiles, 1u);
}

}  // namespace
}  // namespace mtile::cuda
