// The file-system side of the module cache, written for a directory that may hold anything: a
// FIFO, a directory or a link where a module should be (opening one must not block or follow it),
// a file too large to read, another user's files, and the temporary files of writers that died.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mtile::cuda::cache_files {

struct ReadResult {
  enum class Status { Missing, Read, Refused } status = Status::Missing;
  std::vector<char> bytes;  // Read: the whole file
  std::string problem;      // Refused: what the path holds instead of a usable file
  dev_t dev = 0;            // Read, Refused (when it could be opened): which file it was
  ino_t ino = 0;
};

// Reads the regular file at `path` without blocking (O_NONBLOCK) or following a link (O_NOFOLLOW).
// Refused, with the reason, without reading: a link, anything but a regular file, a file of more
// than `max_bytes` (nothing of its size is allocated), one owned by another user or writable by
// group or others.
ReadResult read_regular_file(const std::filesystem::path& path, uint64_t max_bytes);

// Removes what is at `path` if it is still the file (dev, ino) that was read, so that a file
// another process has just put in its place stays. dev == ino == 0: whatever is there (an empty
// directory included). Returns whether something was removed.
bool remove_entry(const std::filesystem::path& path, dev_t dev = 0, ino_t ino = 0);

// Creates `dir` if needed (itself mode 0700, missing parents as the umask allows) and checks it
// is private: a directory owned by this user that neither group nor others may write (anyone
// who can write there could plant code for any kernel). Empty when usable, else why not.
std::string open_private_dir(const std::filesystem::path& dir);

// The mkstemp() template for a temporary file that becomes `target`: the writer's host and pid
// are in its name ("<target>.tmp.<host>.<pid>.XXXXXX"), so a later process can tell it is stale.
std::string temp_template(const std::filesystem::path& target);

// Removes temporary files of module writers in `dir` that died (this host, their pid gone) or
// stalled (modified longer than `max_age` ago). Returns how many it removed.
int remove_stale_temps(const std::filesystem::path& dir, std::chrono::seconds max_age);

}  // namespace mtile::cuda::cache_files
