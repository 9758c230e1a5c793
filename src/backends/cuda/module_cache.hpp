// Compiled modules (CUBINs) cached in memory and on disk, so a second process starts without NVRTC.
//
// Disk layout: one file per key, <dir>/<32 hex digits>.cubin, mode 0600, written atomically (a
// temporary file "<entry>.tmp.<host>.<pid>.XXXXXX" in the same directory, then rename). Each file
// starts with a header (magic, format version, key, payload length, payload xxHash).
//
// What the directory holds is not trusted (cache_files.hpp):
//  - the directory is created 0700; one that group or others may write, or that another user
//    owns, is refused for reading and writing (a warning once per process, and
//    CacheStats::disk_refused says why): anyone who can write there could plant code;
//  - an entry is read only if it is a regular file of this user of at most kMaxFileBytes, opened
//    without blocking or following links (a FIFO, a directory, a link or a huge file there never
//    blocks or exhausts memory); one that fails any check is removed and rebuilt;
//  - a payload that passes the header check but that the caller's `validate` rejects (the driver
//    refuses to load it) is removed and rebuilt once;
//  - temporary files of writers that died (this host, pid gone) or stalled (older than
//    kStaleTempAge) are removed when a cache first uses its directory.
#pragma once
#include <chrono>
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
  uint64_t corrupt_files = 0;      // found bad (header, type, size, owner), removed, rebuilt
  uint64_t rejected_payloads = 0;  // intact, but `validate` refused them: removed, rebuilt
  uint64_t write_failures = 0;
  uint64_t stale_temps_removed = 0;
  bool disk_refused = false;        // the directory can't be used: memory only
  std::string disk_refused_reason;  // why, naming the directory
};

class ModuleCache {
 public:
  using Payload = std::shared_ptr<const std::vector<char>>;
  explicit ModuleCache(CacheConfig config = CacheConfig::from_env());

  using Build = std::function<std::vector<char>()>;
  // The caller's use of a payload (the CUDA backend loads it): false rejects it.
  using Validate = std::function<bool(const std::vector<char>&)>;

  // The payload for `key`: from memory, else from disk, else from build() (then kept in both).
  // With `validate`, the payload returned is one it accepted: a cached payload it rejects is
  // dropped from memory and disk and rebuilt, once; nullptr when it rejects the fresh build too
  // (nothing is cached then). A failing build throws and caches nothing; a failing disk write is
  // counted, not thrown.
  Payload get_or_build(const CacheKey& key, const Build& build, const Validate& validate = {});
  // Forgets `key` in memory and on disk.
  void invalidate(const CacheKey& key);

  // The disk layer alone. read_file returns nullopt for a missing entry, and for a corrupt,
  // truncated or unusable one (see above), which it removes. write_file returns false (and says
  // why) when it can't write.
  std::optional<std::vector<char>> read_file(const CacheKey& key);
  bool write_file(const CacheKey& key, const std::vector<char>& payload, std::string* why = nullptr);
  std::filesystem::path file_path(const CacheKey& key) const;

  const CacheConfig& config() const { return config_; }
  CacheStats stats() const;

  static constexpr char kMagic[8] = {'M', 'T', 'I', 'L', 'E', 'M', 'O', 'D'};
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kHeaderBytes = 48;              // magic, version, reserved, key, length, hash
  static constexpr uint64_t kMaxFileBytes = 64ull << 20;  // far above any CUBIN mtile makes
  static constexpr std::chrono::seconds kStaleTempAge{600};

 private:
  // Opens the directory on first use (creates it, checks it is private, removes stale temporary
  // files); false when it is refused.
  bool disk_ready();
  void reject(const CacheKey& key);

  CacheConfig config_;
  std::once_flag dir_once_;
  mutable std::mutex mutex_;
  std::map<CacheKey, Payload> memory_;
  CacheStats stats_;
};

}  // namespace mtile::cuda
