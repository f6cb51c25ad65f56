#include "core/file_system.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "core/error.h"

namespace convoy {

namespace {

[[noreturn]] void fail(const std::string& path, const char* operation, int err) {
  throw Error::from_errno(err, fmt::format("'{}': cannot {}", path, operation));
}

class LocalFile final : public WritableFile {
 public:
  LocalFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~LocalFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void append(std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(path_, "write", errno);
      }
      done += static_cast<size_t>(n);
    }
  }
  void sync() override {
    if (::fsync(fd_) != 0) fail(path_, "fsync", errno);
  }
  void close() override {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) fail(path_, "close", errno);
  }

 private:
  std::string path_;
  int fd_;
};

class LocalFileSystem final : public FileSystem {
 public:
  std::unique_ptr<WritableFile> open(const std::string& path, Mode mode) override {
    const int flags =
        O_WRONLY | O_CREAT | O_CLOEXEC | (mode == Mode::kCreateNew ? O_EXCL : O_APPEND);
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) fail(path, mode == Mode::kCreateNew ? "create" : "open", errno);
    return std::make_unique<LocalFile>(path, fd);
  }
  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) fail(to, "rename into place", errno);
  }
  void link(const std::string& from, const std::string& to) override {
    if (::link(from.c_str(), to.c_str()) != 0) fail(to, "link", errno);
  }
  void truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) fail(path, "truncate", errno);
  }
  void sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(dir, "open the directory", errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) fail(dir, "fsync the directory", err);
  }
  bool remove(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 || errno == ENOENT;
  }
};

}  // namespace

FileSystem& FileSystem::local() {
  static LocalFileSystem* const file_system = new LocalFileSystem;
  return *file_system;
}

}  // namespace convoy
