#include "storage/dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace broker::storage {

namespace {
constexpr const char* kLockFile = "broker.lock";
}  // namespace

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

Status DirLock::acquire(const std::string& dir) {
  const std::string path = dir + "/" + kLockFile;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) return Status::io_error(fmt::format("{}: cannot lock: {}", path, std::strerror(err)));
    std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    // Another store in this process (an embedder's second broker) holds it through its own fd.
    if (pid == std::to_string(::getpid()))
      return Status::unavailable(fmt::format("{}: the data directory is in use by another store in this process", dir));
    return Status::unavailable(
        fmt::format("{}: the data directory is in use by another process (pid {})", dir, pid));
  }
  // The holder's pid, for the message above; the lock itself is the flock.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the message loses its pid: the lock holds.
  }
  fd_ = fd;
  return Status::ok();
}

}  // namespace broker::storage
