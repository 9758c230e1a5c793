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
#include <fstream>
#include <iostream>
#include <string_view>

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

ModuleCache::Payload ModuleCache::get_or_build(const CacheKey& key, const std::function<std::vector<char>()>& build) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = memory_.find(key); it != memory_.end()) {
      ++stats_.memory_hits;
      return it->second;
    }
  }
  // Disk and build run unlocked: compiles of different modules may overlap. Two threads that
  // build the same module both succeed; the first to finish is kept.
  Payload payload;
  if (auto bytes = read_file(key)) {
    payload = std::make_shared<const std::vector<char>>(std::move(*bytes));
    std::lock_guard lock(mutex_);
    ++stats_.disk_hits;
  } else {
    payload = std::make_shared<const std::vector<char>>(build());
    {
      std::lock_guard lock(mutex_);
      ++stats_.compiles;
    }
    std::string why;
    if (config_.disk && !write_file(key, *payload, &why)) {
      static std::once_flag warned;  // once per process: the cache is an optimisation
      std::call_once(warned, [&] {
        std::cerr << "mtile: warning: module cache: " << why << " (continuing without the disk cache)\n";
      });
    }
  }
  std::lock_guard lock(mutex_);
  return memory_.emplace(key, std::move(payload)).first->second;
}

std::optional<std::vector<char>> ModuleCache::read_file(const CacheKey& key) {
  if (!config_.disk) return std::nullopt;
  fs::path path = file_path(key);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::vector<char> file(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)));
  in.seekg(0);
  in.read(file.data(), static_cast<std::streamsize>(file.size()));
  if (!in || !file_problem(file, key).empty()) {
    std::error_code ec;
    fs::remove(path, ec);  // the caller rebuilds and rewrites it
    std::lock_guard lock(mutex_);
    ++stats_.corrupt_files;
    return std::nullopt;
  }
  return std::vector<char>(file.begin() + kHeaderBytes, file.end());
}

bool ModuleCache::write_file(const CacheKey& key, const std::vector<char>& payload, std::string* why) {
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mutex_);
    ++stats_.write_failures;
    if (why) *why = what;
    return false;
  };
  if (!config_.disk) return fail("the disk cache is off");
  std::error_code ec;
  fs::create_directories(config_.dir, ec);
  if (ec) return fail(fmt::format("can't create {}: {}", config_.dir.string(), ec.message()));

  // Readers see either no file or a complete one: the file is written under a unique temporary
  // name in the same directory and renamed into place. No fsync: a file torn by a crash fails the
  // header check and is rebuilt.
  fs::path target = file_path(key);
  std::string temp = target.string() + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return fail(fmt::format("can't create a file in {}: {}", config_.dir.string(), std::strerror(errno)));
  ::fchmod(fd, 0644);  // mkstemp's 0600 would hide a shared cache directory from other users
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
