#include "core/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace convoy {

namespace {

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw Error::from_errno(err, fmt::format("'{}': cannot write: {}", path, what));
}

std::string parent_dir(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// A unique name beside `path`, created empty with mode 0644 (mkstemp would give 0600).
std::string make_temp(const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    const std::string temp = fmt::format("{}.tmp.{}.{}", path, getpid(), attempt);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return temp;
    }
    if (errno != EEXIST || attempt > 100) fail(path, "create", errno);
  }
}

void sync_and_rename(const std::string& temp, const std::string& path) {
  const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "reopen", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(path, "fsync", err);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail(path, "rename", errno);
  const int dir = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

// Removes `<path>.tmp.<pid>.<n>` files whose process no longer exists (killed while writing).
void remove_stale_temporaries(const std::string& path) {
  const std::string prefix = std::filesystem::path(path).filename().string() + ".tmp.";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(parent_dir(path), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const char* pid_text = name.c_str() + prefix.size();
    char* end = nullptr;
    const long pid = std::strtol(pid_text, &end, 10);
    if (end == pid_text || *end != '.' || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

}  // namespace

void write_file_atomically_with(const std::string& path,
                                const std::function<void(const std::string&)>& write) {
  remove_stale_temporaries(path);
  const std::string temp = make_temp(path);
  try {
    write(temp);
    sync_and_rename(temp, path);
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  write_file_atomically_with(path, [&](const std::string& temp) {
    const int fd = ::open(temp.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) fail(path, "open", errno);
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        fail(path, "write", err);
      }
      done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) fail(path, "close", errno);
  });
}

}  // namespace convoy
