// The module cache: a map in memory over checked, atomically written files on disk.
#include "backends/cuda/module_cache.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <string_view>

#include "backends/cuda/cache_files.hpp"

#ifndef MTILE_VERSION
#error "MTILE_VERSION must be defined (PROJECT_VERSION, by src/backends/cuda/CMakeLists.txt)"
#endif

namespace mtile::cuda {
namespace fs = std::filesystem;
namespace {

// Fields are length-prefixed so that no two different inputs serialize the same.
void add_field(std::string& buf, std::string_view s) {
  uint64_t n = s.size();
  buf.append(reinterpret_cast<const char*>(&n), sizeof n);
  buf.append(s);
}

template <class T>
void put(std::vector<char>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}
template <class T>
T get(const std::vector<char>& in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

// Header layout (host byte order): magic[8], format u32, reserved u32, key high u64, key low u64,
// payload length u64, payload XXH3-64 u64.
std::vector<char> make_header(const CacheKey& key, const std::vector<char>& payload) {
  std::vector<char> h(ModuleCache::kHeaderBytes, 0);
  std::memcpy(h.data(), ModuleCache::kMagic, sizeof ModuleCache::kMagic);
  put<uint32_t>(h, 8, ModuleCache::kFormatVersion);
  put<uint64_t>(h, 16, key.high);
  put<uint64_t>(h, 24, key.low);
  put<uint64_t>(h, 32, payload.size());
  put<uint64_t>(h, 40, XXH3_64bits(payload.data(), payload.size()));
  return h;
}

// Empty when `file` is a complete, intact file for `key`; otherwise what is wrong with it.
std::string file_problem(const std::vector<char>& file, const CacheKey& key) {
  if (file.size() < ModuleCache::kHeaderBytes) return "shorter than its header";
  if (std::memcmp(file.data(), ModuleCache::kMagic, sizeof ModuleCache::kMagic) != 0) return "bad magic";
  if (get<uint32_t>(file, 8) != ModuleCache::kFormatVersion) return "other format version";
  if (get<uint64_t>(file, 16) != key.high || get<uint64_t>(file, 24) != key.low) return "other key";
  uint64_t length = get<uint64_t>(file, 32);
  if (length != file.size() - ModuleCache::kHeaderBytes) return "truncated or padded";
  const char* payload = file.data() + ModuleCache::kHeaderBytes;
  if (get<uint64_t>(file, 40) != XXH3_64bits(payload, length)) return "payload checksum mismatch";
  return "";
}

// Prints `what` the first time `topic` comes up in this process: the disk cache is an optimisation,
// so its trouble is a warning, but never a silent one.
void warn_once(const std::string& topic, const std::string& what) {
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard lock(mu);
  if (warned.insert(topic).second) std::cerr << "mtile: warning: " << what << "\n";
}

bool write_all(int fd, const std::vector<char>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const char* mtile_version() {
  return MTILE_VERSION;
}

std::string CacheKey::hex() const {
  return fmt::format("{:016x}{:016x}", high, low);
}

CacheKey cache_key(const CacheKeyInputs& in) {
  std::string buf;
  add_field(buf, "mtile module key 1");
  add_field(buf, fmt::format("{:016x}", in.ir_hash));
  add_field(buf, type_name(in.dtype));
  add_field(buf, fmt::format("{:016x}", in.source_hash));
  add_field(buf, in.entry);
  add_field(buf, in.arch);
  add_field(buf, std::to_string(in.options.size()));
  for (const auto& o : in.options) add_field(buf, o);
  add_field(buf, in.nvrtc_version);
  add_field(buf, in.mtile_version);
  XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return {h.high64, h.low64};
}

CacheConfig CacheConfig::from_env() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  CacheConfig c;
  if (env("MTILE_CACHE") == "off") c.disk = false;
  if (std::string d = env("MTILE_CACHE_DIR"); !d.empty())
    c.dir = d;
  else if (std::string x = env("XDG_CACHE_HOME"); !x.empty())
    c.dir = fs::path(x) / "mtile";
  else if (std::string h = env("HOME"); !h.empty())
    c.dir = fs::path(h) / ".cache" / "mtile";
  else
    c.disk = false;
  return c;
}

ModuleCache::ModuleCache(CacheConfig config) : config_(std::move(config)) {}

fs::path ModuleCache::file_path(const CacheKey& key) const {
  return config_.dir / (key.hex() + ".cubin");
}

CacheStats ModuleCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool ModuleCache::disk_ready() {
  std::call_once(dir_once_, [&] {
    std::string problem = cache_files::open_private_dir(config_.dir);
    if (problem.empty()) {
      int removed = cache_files::remove_stale_temps(config_.dir, kStaleTempAge);
      std::lock_guard lock(mutex_);
      stats_.stale_temps_removed += static_cast<uint64_t>(removed);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      stats_.disk_refused = true;
      stats_.disk_refused_reason = problem;
    }
    warn_once(config_.dir.string(), "module cache: " + problem + "; continuing without the disk cache");
  });
  std::lock_guard lock(mutex_);
  return !stats_.disk_refused;
}

ModuleCache::Payload ModuleCache::get_or_build(const CacheKey& key, const Build& build, const Validate& validate) {
  auto accepted = [&](const Payload& p) { return !validate || validate(*p); };
  Payload payload;
  {
    std::lock_guard lock(mutex_);
    if (auto it = memory_.find(key); it != memory_.end()) {
      ++stats_.memory_hits;
      payload = it->second;
    }
  }
  // Disk, build and validate run unlocked: compiles of different modules may overlap. Two threads
  // that build the same module both succeed; the first to finish is kept in memory.
  if (payload) {
    if (accepted(payload)) return payload;
    reject(key);
  } else if (auto bytes = read_file(key)) {
    payload = std::make_shared<const std::vector<char>>(std::move(*bytes));
    {
      std::lock_guard lock(mutex_);
      ++stats_.disk_hits;
    }
    if (accepted(payload)) {
      std::lock_guard lock(mutex_);
      memory_.emplace(key, payload);
      return payload;
    }
    reject(key);
  }
  payload = std::make_shared<const std::vector<char>>(build());
  {
    std::lock_guard lock(mutex_);
    ++stats_.compiles;
  }
  if (!accepted(payload)) return nullptr;
  std::string why;
  if (config_.disk && !write_file(key, *payload, &why) && !stats().disk_refused)
    warn_once("write", "module cache: " + why + " (the module is kept in memory only)");
  std::lock_guard lock(mutex_);
  memory_.emplace(key, payload);
  return payload;
}

void ModuleCache::reject(const CacheKey& key) {
  {
    std::lock_guard lock(mutex_);
    ++stats_.rejected_payloads;
  }
  invalidate(key);
}

void ModuleCache::invalidate(const CacheKey& key) {
  {
    std::lock_guard lock(mutex_);
    memory_.erase(key);
  }
  if (config_.disk && disk_ready()) cache_files::remove_entry(file_path(key));
}

std::optional<std::vector<char>> ModuleCache::read_file(const CacheKey& key) {
  if (!config_.disk || !disk_ready()) return std::nullopt;
  fs::path path = file_path(key);
  cache_files::ReadResult r = cache_files::read_regular_file(path, kMaxFileBytes);
  if (r.status == cache_files::ReadResult::Status::Missing) return std::nullopt;
  if (r.status == cache_files::ReadResult::Status::Refused || !file_problem(r.bytes, key).empty()) {
    // The caller rebuilds and rewrites it. A directory that is not empty stays, and the rewrite
    // fails: that key is then built by every process, but never read from there.
    cache_files::remove_entry(path, r.dev, r.ino);
    std::lock_guard lock(mutex_);
    ++stats_.corrupt_files;
    return std::nullopt;
  }
  return std::vector<char>(r.bytes.begin() + kHeaderBytes, r.bytes.end());
}

bool ModuleCache::write_file(const CacheKey& key, const std::vector<char>& payload, std::string* why) {
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mutex_);
    ++stats_.write_failures;
    if (why) *why = what;
    return false;
  };
  if (!config_.disk) return fail("the disk cache is off");
  if (!disk_ready()) return fail(stats().disk_refused_reason);

  // Readers see either no file or a complete one: the file is written under a unique temporary
  // name in the same directory (mkstemp: mode 0600) and renamed into place. No fsync: a file torn
  // by a crash fails the header check and is rebuilt.
  fs::path target = file_path(key);
  std::string temp = cache_files::temp_template(target);
  int fd = ::mkstemp(temp.data());
  if (fd < 0 && errno == ENOENT && cache_files::open_private_dir(config_.dir).empty()) {  // removed since
    temp = cache_files::temp_template(target);
    fd = ::mkstemp(temp.data());
  }
  if (fd < 0) return fail(fmt::format("can't create a file in {}: {}", config_.dir.string(), std::strerror(errno)));
  bool ok = write_all(fd, make_header(key, payload)) && write_all(fd, payload);
  ok = ::close(fd) == 0 && ok;
  ok = ok && ::rename(temp.c_str(), target.c_str()) == 0;
  if (!ok) {
    std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    return fail(fmt::format("can't write {}: {}", target.string(), reason));
  }
  std::lock_guard lock(mutex_);
  ++stats_.disk_writes;
  return true;
}

}  // namespace mtile::cuda
