// The module cache's key and disk layer, with fake payloads: no GPU and no NVRTC needed. The
// second half puts in the cache directory what a probe found could hang, crash or fool it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "backends/cuda/cache_files.hpp"
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

// Runs fn() on its own thread and returns its result. A call that has not returned within `limit`
// can't be cancelled: the test binary then says so and exits, rather than hanging CTest.
template <class F>
auto within(std::chrono::seconds limit, const char* what, F fn) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  std::thread(std::move(task)).detach();
  if (result.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not return within %lld s: it blocks\n", what,
                 static_cast<long long>(limit.count()));
    std::_Exit(1);
  }
  return result.get();
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

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
  EXPECT_TRUE(cache.stats().disk_refused);
  std::string why;
  EXPECT_FALSE(cache.write_file(key(1), payload(10, 1), &why));
  EXPECT_NE(why.find("can't create"), std::string::npos) << why;
  EXPECT_EQ(why, cache.stats().disk_refused_reason);
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

// ---------------------------------------------------------------------------------------------
// Hostile cache directories.

TEST_F(ModuleCacheTest, EntriesAndDirectoryArePrivate) {
  ModuleCache cache(config());
  ASSERT_TRUE(cache.write_file(key(1), payload(100, 1)));
  EXPECT_EQ(mode_of(dir_) & 0777, 0700u) << "the directory it creates";
  EXPECT_EQ(mode_of(cache.file_path(key(1))) & 0777, 0600u) << "a module file";
  EXPECT_FALSE(cache.stats().disk_refused);
}

TEST_F(ModuleCacheTest, FifoAtAnEntryDoesNotBlock) {
  fs::create_directories(dir_);
  ::chmod(dir_.c_str(), 0700);
  ModuleCache cache(config());
  const fs::path path = cache.file_path(key(1));
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  // Opening a FIFO for reading blocks until a writer comes, unless it is opened non-blocking.
  auto got = within(std::chrono::seconds(20), "read_file on a FIFO", [&] { return cache.read_file(key(1)); });
  EXPECT_EQ(got, std::nullopt);
  EXPECT_EQ(cache.stats().corrupt_files, 1u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(path))) << "the FIFO is removed";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto built = within(std::chrono::seconds(20), "get_or_build over a FIFO",
                      [&] { return cache.get_or_build(key(1), [&] { return payload(50, 2); }); });
  EXPECT_EQ(*built, payload(50, 2));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(path))) << "rebuilt in its place";
  EXPECT_EQ(ModuleCache(config()).read_file(key(1)), payload(50, 2));
}

TEST_F(ModuleCacheTest, DirectoryAtAnEntryIsNotRead) {
  ModuleCache cache(config());
  const fs::path path = cache.file_path(key(1));
  fs::create_directories(path);  // empty: removed, and the entry written in its place
  EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
  EXPECT_FALSE(fs::exists(path));
  fs::create_directories(path / "inside");  // not empty: stays, and nothing is written there
  int builds = 0;
  auto got = cache.get_or_build(key(1), [&] {
    ++builds;
    return payload(20, 3);
  });
  EXPECT_EQ(*got, payload(20, 3));
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(cache.stats().corrupt_files, 2u);
  EXPECT_EQ(cache.stats().write_failures, 1u) << "a file can't replace a directory";
  EXPECT_TRUE(fs::is_directory(path / "inside"));
}

TEST_F(ModuleCacheTest, HugeFileAtAnEntryIsRefusedUnread) {
  ModuleCache cache(config());
  ASSERT_TRUE(cache.write_file(key(1), payload(10, 1)));
  const fs::path path = cache.file_path(key(1));
  // Sparse: 1 GiB that takes no disk space. Reading it whole would allocate 1 GiB.
  for (uint64_t size : {uint64_t{1} << 30, ModuleCache::kMaxFileBytes + 1}) {
    SCOPED_TRACE(size);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "refused without reading it";
    EXPECT_FALSE(fs::exists(path));
    ASSERT_TRUE(cache.write_file(key(1), payload(10, 1)));
  }
  EXPECT_EQ(cache.stats().corrupt_files, 2u);
  auto r = cache_files::read_regular_file(path, 10);
  EXPECT_EQ(r.status, cache_files::ReadResult::Status::Refused);
  EXPECT_NE(r.problem.find("over the limit of 10"), std::string::npos) << r.problem;
  EXPECT_TRUE(r.bytes.empty());
}

TEST_F(ModuleCacheTest, LinkAtAnEntryIsNotFollowed) {
  ModuleCache cache(config());
  ASSERT_TRUE(cache.write_file(key(2), payload(10, 1)));
  const fs::path target = cache.file_path(key(2)), link = cache.file_path(key(1));
  fs::create_symlink(target, link);
  EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
  EXPECT_FALSE(fs::exists(fs::symlink_status(link))) << "the link is removed";
  EXPECT_EQ(cache.read_file(key(2)), payload(10, 1)) << "what it pointed to stays";
}

TEST_F(ModuleCacheTest, OtherUsersFileAtAnEntryIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  ModuleCache cache(config());
  ASSERT_TRUE(cache.write_file(key(1), payload(10, 1)));
  ASSERT_EQ(::chown(cache.file_path(key(1)).c_str(), 65534, 65534), 0);
  auto r = cache_files::read_regular_file(cache.file_path(key(1)), ModuleCache::kMaxFileBytes);
  EXPECT_EQ(r.status, cache_files::ReadResult::Status::Refused);
  EXPECT_NE(r.problem.find("owned by user 65534"), std::string::npos) << r.problem;
  EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
}

TEST_F(ModuleCacheTest, PayloadTheCallerRejectsIsRebuiltOnce) {
  const std::vector<char> good = payload(64, 1), foreign = payload(64, 9);
  ModuleCache planter(config());
  ASSERT_TRUE(planter.write_file(key(1), foreign));  // a valid header around someone else's code
  int builds = 0, checks = 0;
  auto build = [&] {
    ++builds;
    return good;
  };
  auto loads = [&](const std::vector<char>& p) {
    ++checks;
    return p == good;  // as the driver accepts only a module of this kernel
  };
  ModuleCache cache(config());
  auto got = cache.get_or_build(key(1), build, loads);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, good);
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(checks, 2) << "the planted payload, then the rebuilt one";
  EXPECT_EQ(cache.stats().disk_hits, 1u);
  EXPECT_EQ(cache.stats().rejected_payloads, 1u);
  EXPECT_EQ(ModuleCache(config()).read_file(key(1)), good) << "the entry on disk is replaced";
  // A memory entry the caller rejects goes the same way.
  ModuleCache memory(config());
  memory.get_or_build(key(2), [] { return payload(8, 4); });
  got = memory.get_or_build(key(2), build, loads);
  EXPECT_EQ(*got, good);
  EXPECT_EQ(memory.stats().rejected_payloads, 1u);
  EXPECT_EQ(memory.stats().compiles, 2u);
}

TEST_F(ModuleCacheTest, FreshBuildTheCallerRejectsIsNotCached) {
  ModuleCache cache(config());
  ASSERT_TRUE(cache.write_file(key(1), payload(16, 2)));
  int builds = 0;
  auto build = [&] {
    ++builds;
    return payload(16, 3);
  };
  auto never = [](const std::vector<char>&) { return false; };
  EXPECT_EQ(cache.get_or_build(key(1), build, never), nullptr);
  EXPECT_EQ(builds, 1) << "rebuilt once, not again and again";
  EXPECT_FALSE(fs::exists(cache.file_path(key(1)))) << "neither the rejected entry nor the rejected build is kept";
  EXPECT_EQ(cache.get_or_build(key(1), build, never), nullptr);
  EXPECT_EQ(builds, 2) << "nothing was kept in memory either";
}

TEST_F(ModuleCacheTest, InvalidateForgetsMemoryAndDisk) {
  ModuleCache cache(config());
  int builds = 0;
  auto build = [&] {
    ++builds;
    return payload(16, 3);
  };
  cache.get_or_build(key(1), build);
  cache.invalidate(key(1));
  EXPECT_FALSE(fs::exists(cache.file_path(key(1))));
  cache.get_or_build(key(1), build);
  EXPECT_EQ(builds, 2);
}

TEST_F(ModuleCacheTest, WorldWritableDirectoryIsRefusedWithAWarning) {
  {
    ModuleCache planter(config());
    ASSERT_TRUE(planter.write_file(key(1), payload(32, 7)));
  }
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  testing::internal::CaptureStderr();
  ModuleCache cache(config());
  int builds = 0;
  auto got = cache.get_or_build(key(1), [&] {
    ++builds;
    return payload(32, 1);
  });
  ModuleCache second(config());
  second.read_file(key(1));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(*got, payload(32, 1)) << "what was in the directory is not read";
  EXPECT_EQ(builds, 1);
  CacheStats s = cache.stats();
  EXPECT_TRUE(s.disk_refused);
  EXPECT_NE(s.disk_refused_reason.find("writable by group or others (mode 0777)"), std::string::npos)
      << s.disk_refused_reason;
  EXPECT_NE(s.disk_refused_reason.find(dir_.string()), std::string::npos) << s.disk_refused_reason;
  EXPECT_EQ(s.disk_hits + s.disk_writes, 0u);
  EXPECT_NE(err.find("mtile: warning: module cache: " + dir_.string()), std::string::npos) << err;
  EXPECT_NE(err.find("continuing without the disk cache"), std::string::npos) << err;
  EXPECT_EQ(err.find("warning", err.find("warning") + 1), std::string::npos) << "warned once: " << err;
  EXPECT_TRUE(second.stats().disk_refused);
  std::string why;
  EXPECT_FALSE(cache.write_file(key(2), payload(4, 4), &why));
  EXPECT_EQ(why, s.disk_refused_reason);
  EXPECT_FALSE(fs::exists(cache.file_path(key(2))));
}

TEST_F(ModuleCacheTest, GroupWritableOrForeignDirectoryIsRefused) {
  fs::create_directories(dir_);
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  EXPECT_NE(cache_files::open_private_dir(dir_).find("writable by group or others (mode 0770)"), std::string::npos);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  EXPECT_EQ(cache_files::open_private_dir(dir_), "") << "readable by others is fine: its files are 0600";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the directory to another user";
  ASSERT_EQ(::chown(dir_.c_str(), 65534, 65534), 0);
  ModuleCache cache(config());
  EXPECT_EQ(cache.read_file(key(1)), std::nullopt);
  EXPECT_NE(cache.stats().disk_refused_reason.find("owned by user 65534"), std::string::npos)
      << cache.stats().disk_refused_reason;
}

TEST_F(ModuleCacheTest, StaleTemporaryFilesAreRemoved) {
  fs::create_directories(dir_);
  ::chmod(dir_.c_str(), 0700);
  const fs::path entry = dir_ / (key(1).hex() + ".cubin");
  // A pid that is gone: a child that has exited and been reaped.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  auto temp_of = [&](pid_t pid) {
    std::string t = cache_files::temp_template(entry);  // "<entry>.tmp.<host>.<our pid>.XXXXXX"
    std::string ours = "." + std::to_string(::getpid()) + ".";
    t.replace(t.rfind(ours), ours.size(), "." + std::to_string(pid) + ".");
    return fs::path(t.replace(t.size() - 6, 6, "abc123"));
  };
  const fs::path dead = temp_of(child), live = temp_of(::getpid());
  const fs::path old_format = dir_ / (key(2).hex() + ".cubin.tmp.Q1w2E3"), unrelated = dir_ / "notes.tmp.txt";
  for (const fs::path& p : {dead, live, old_format, unrelated}) write_bytes(p, {'x'});
  const auto long_ago = fs::file_time_type::clock::now() - std::chrono::minutes(20);
  fs::last_write_time(old_format, long_ago);
  fs::last_write_time(unrelated, long_ago);

  ModuleCache cache(config());
  EXPECT_EQ(cache.read_file(key(1)), std::nullopt);  // opens the directory
  EXPECT_EQ(cache.stats().stale_temps_removed, 2u);
  EXPECT_FALSE(fs::exists(dead)) << "its writer's pid is gone";
  EXPECT_FALSE(fs::exists(old_format)) << "untouched for 20 minutes";
  EXPECT_TRUE(fs::exists(live)) << "a writer that still runs";
  EXPECT_TRUE(fs::exists(unrelated)) << "not a module's temporary file";
}

TEST_F(ModuleCacheTest, TwoWritersOfOneKeyLeaveAnIntactEntry) {
  const std::vector<char> a = payload(150000, 1), b = payload(70000, 2);
  std::atomic<int> failures{0};
  auto writer = [&](const std::vector<char>& mine) {
    ModuleCache cache(config());  // as another process would: its own object
    for (int i = 0; i < 150; ++i) {
      failures += !cache.write_file(key(1), mine);
      auto got = cache.read_file(key(1));
      failures += !got || (*got != a && *got != b);
    }
    failures += static_cast<int>(cache.stats().corrupt_files);
  };
  std::thread t1(writer, std::cref(a)), t2(writer, std::cref(b));
  t1.join();
  t2.join();
  EXPECT_EQ(failures, 0);
  auto last = ModuleCache(config()).read_file(key(1));
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(*last == a || *last == b);
  EXPECT_EQ(files(), std::vector<std::string>{key(1).hex() + ".cubin"}) << "no temporary file is left";
}

TEST_F(ModuleCacheTest, TwoProcessesBuildingOneKeyAgree) {
  const std::vector<char> p = payload(90000, 5);
  pid_t child = ::fork();
  if (child == 0) {
    ModuleCache cache(config());
    int bad = 0;
    for (int i = 0; i < 100; ++i) {
      cache.invalidate(key(1));
      bad += *cache.get_or_build(key(1), [&] { return p; }) != p;
    }
    ::_exit(bad == 0 ? 0 : 1);
  }
  ASSERT_GT(child, 0);
  int bad = 0;
  for (int i = 0; i < 100; ++i) {
    ModuleCache cache(config());
    bad += *cache.get_or_build(key(1), [&] { return p; }) != p;
    bad += static_cast<int>(cache.stats().corrupt_files);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process saw a bad payload";
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(ModuleCache(config()).read_file(key(1)), p);
  EXPECT_EQ(files(), std::vector<std::string>{key(1).hex() + ".cubin"});
}

}  // namespace
}  // namespace mtile::cuda
