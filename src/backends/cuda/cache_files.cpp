// File-system primitives of the module cache; see cache_files.hpp.
#include "backends/cuda/cache_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace mtile::cuda::cache_files {
namespace fs = std::filesystem;
namespace {

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

// Group- or world-writable, or someone else's: anyone who could write it could plant code.
std::string foreign(const struct stat& st) {
  if (st.st_uid != ::geteuid()) return fmt::format("owned by user {}, not by this user ({})", st.st_uid, ::geteuid());
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fmt::format("writable by group or others (mode {:04o})", st.st_mode & 07777);
  return "";
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  std::string h;
  for (const char* c = buf; *c && h.size() < 32; ++c) h += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '-';
  return h.empty() ? "host" : h;
}

bool is_hex32(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Whether the temporary file `name` (in a directory entry) was left by a writer that is gone.
bool writer_gone(std::string_view name, const std::string& host) {
  // "<32 hex>.cubin.tmp.<host>.<pid>.<6 random>"; older mtiles wrote "<32 hex>.cubin.tmp.<6 random>".
  constexpr std::string_view kMid = ".cubin.tmp.";
  if (name.size() < 32 + kMid.size() || !is_hex32(name.substr(0, 32)) || name.substr(32, kMid.size()) != kMid)
    return false;
  std::string_view rest = name.substr(32 + kMid.size());
  if (rest.substr(0, host.size()) != host || rest.size() <= host.size() || rest[host.size()] != '.') return false;
  rest.remove_prefix(host.size() + 1);
  pid_t pid = 0;
  size_t digits = 0;
  for (; digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits])); ++digits)
    pid = pid * 10 + (rest[digits] - '0');
  if (digits == 0 || digits > 9 || digits >= rest.size() || rest[digits] != '.') return false;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

bool is_temp_name(std::string_view name) {
  return name.size() > 32 + 11 && is_hex32(name.substr(0, 32)) && name.substr(32, 11) == ".cubin.tmp.";
}

}  // namespace

ReadResult read_regular_file(const fs::path& path, uint64_t max_bytes) {
  ReadResult r;
  auto refuse = [&](std::string why) {
    r.status = ReadResult::Status::Refused;
    r.problem = std::move(why);
    return r;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return r;
    if (errno == ELOOP) return refuse("a symbolic link");
    return refuse(fmt::format("can't be opened: {}", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return refuse("can't be examined: " + why);
  }
  r.dev = st.st_dev;
  r.ino = st.st_ino;
  std::string problem;
  if (!S_ISREG(st.st_mode))
    problem = kind_of(st.st_mode);
  else if (std::string f = foreign(st); !f.empty())
    problem = f;
  else if (static_cast<uint64_t>(st.st_size) > max_bytes)
    problem = fmt::format("{} bytes, over the limit of {}", st.st_size, max_bytes);
  if (!problem.empty()) {
    ::close(fd);
    return refuse(problem);
  }
  // A file that shrinks while it is read gives fewer bytes; its header's length field says so.
  r.bytes.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < r.bytes.size()) {
    ssize_t n = ::read(fd, r.bytes.data() + done, r.bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  r.bytes.resize(done);
  r.status = ReadResult::Status::Read;
  return r;
}

bool remove_entry(const fs::path& path, dev_t dev, ino_t ino) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  if ((dev || ino) && (st.st_dev != dev || st.st_ino != ino)) return false;
  return S_ISDIR(st.st_mode) ? ::rmdir(path.c_str()) == 0 : ::unlink(path.c_str()) == 0;
}

std::string open_private_dir(const fs::path& dir) {
  if (dir.empty()) return "no directory was given";
  std::error_code ec;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return fmt::format("can't create {}: {}", dir.string(), std::strerror(errno));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fmt::format("can't examine {}: {}", dir.string(), std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fmt::format("{} is {}, not a directory", dir.string(), kind_of(st.st_mode));
  if (std::string f = foreign(st); !f.empty())
    return fmt::format(
        "{} is {}: anyone who can write it could plant code for any kernel (chmod go-w it, or set "
        "MTILE_CACHE_DIR to a directory of your own)",
        dir.string(), f);
  return "";
}

std::string temp_template(const fs::path& target) {
  return fmt::format("{}.tmp.{}.{}.XXXXXX", target.string(), host_name(), ::getpid());
}

int remove_stale_temps(const fs::path& dir, std::chrono::seconds max_age) {
  const std::string host = host_name();
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_temp_name(name)) continue;
    std::error_code tec;
    auto modified = fs::last_write_time(it->path(), tec);
    bool old = !tec && now - modified > max_age;
    if ((old || writer_gone(name, host)) && remove_entry(it->path())) ++removed;
  }
  return removed;
}

}  // namespace mtile::cuda::cache_files
