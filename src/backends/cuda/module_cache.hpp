// Compiled modules (CUBINs) cached in memory and on disk, so a second process starts without NVRTC.
//
// Disk layout: one file per key, <dir>/<32 hex digits>.cubin, written atomically (temporary file in
// the same directory, then rename). Each file starts with a header (magic, format version, key,
// payload length, payload xxHash); a file that fails any check is deleted and rebuilt.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mtile/types.hpp"

namespace mtile::cuda {

// mtile's version (PROJECT_VERSION), part of every key.
const char* mtile_version();

// What a compiled module depends on. Each field changes the key.
struct CacheKeyInputs {
  uint64_t ir_hash = 0;  // ir::structural_hash of the lowered function (covers baked constexprs)
  ScalarType dtype = ScalarType::f32;
  // xxHash of the generated source: a changed code generator never reuses stale code, even when
  // the version number was not bumped during development.
  uint64_t source_hash = 0;
  std::string entry;  // kernel symbol
  std::string arch;   // "sm_90a"
  std::vector<std::string> options;
  std::string nvrtc_version;
  std::string mtile_version = cuda::mtile_version();
};

struct CacheKey {
  uint64_t high = 0, low = 0;  // XXH3-128
  std::string hex() const;     // 32 hex digits
  friend bool operator==(const CacheKey&, const CacheKey&) = default;
  friend auto operator<=>(const CacheKey&, const CacheKey&) = default;
};
CacheKey cache_key(const CacheKeyInputs& in);

struct CacheConfig {
  bool disk = true;           // false: memory only
  std::filesystem::path dir;  // where the files live when `disk`
  // MTILE_CACHE=off disables the disk; the directory is $MTILE_CACHE_DIR, else
  // $XDG_CACHE_HOME/mtile, else ~/.cache/mtile (no disk cache when none is set).
  static CacheConfig from_env();
};

struct CacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t compiles = 0;  // calls of the build function
  uint64_t disk_writes = 0;
  uint64_t corrupt_files = 0;  // found bad, deleted, rebuilt
  uint64_t write_failures = 0;
};

class ModuleCache {
 public:
  using Payload = std::shared_ptr<const std::vector<char>>;
  explicit ModuleCache(CacheConfig config = CacheConfig::from_env());

  // The payload for `key`: from memory, else from disk, else from build() (then kept in both).
  // A failing build throws and caches nothing; a failing disk write is counted, not thrown.
  Payload get_or_build(const CacheKey& key, const std::function<std::vector<char>()>& build);

  // The disk layer alone. read_file returns nullopt for a missing file, and for a corrupt or
  // truncated one, which it deletes. write_file returns false (and says why) when it can't write.
  std::optional<std::vector<char>> read_file(const CacheKey& key);
  bool write_file(const CacheKey& key, const std::vector<char>& payload, std::string* why = nullptr);
  std::filesystem::path file_path(const CacheKey& key) const;

  const CacheConfig& config() const { return config_; }
  CacheStats stats() const;

  static constexpr char kMagic[8] = {'M', 'T', 'I', 'L', 'E', 'M', 'O', 'D'};
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kHeaderBytes = 48;  // magic, version, reserved, key, length, hash

 private:
  CacheConfig config_;
  mutable std::mutex mutex_;
  std::map<CacheKey, Payload> memory_;
  CacheStats stats_;
};

}  // namespace mtile::cuda
