#include "dist/record_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "core/crc32.h"
#include "core/error.h"

namespace convoy {

namespace {

uint32_t le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // the project builds for little-endian machines (see npz_writer.cc)
  return v;
}

// Visits whole, checksummed records; returns the byte length of the intact prefix.
uint64_t scan(const std::string& path, const std::function<void(std::string_view)>& visit) {
  std::ifstream in(path, std::ios::binary);
  uint64_t good = 0;
  std::string payload;
  char header[8];
  while (in.read(header, 8)) {
    const uint32_t length = le32(header), crc = le32(header + 4);
    payload.resize(length);
    if (!in.read(payload.data(), length) || crc32(payload) != crc) break;
    visit(payload);
    good += 8 + length;
  }
  return good;
}

}  // namespace

namespace {

// A descriptor for one call, closed when it goes.
class Descriptor {
 public:
  Descriptor(const std::string& path, int flags) : fd_(::open(path.c_str(), flags, 0644)) {
    if (fd_ < 0) {
      throw Error::io(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    }
  }
  ~Descriptor() { ::close(fd_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

RecordLog::RecordLog(const std::string& path, const std::function<void(std::string_view)>& replay)
    : path_(path) {
  const uint64_t good = scan(path, replay);
  // Drop a damaged tail (a crash in the middle of an append): appends continue after the good part.
  const Descriptor file(path, O_WRONLY | O_CREAT | O_CLOEXEC);
  if (::ftruncate(file.get(), static_cast<off_t>(good)) != 0) {
    throw Error::io(fmt::format("cannot prepare '{}': {}", path, std::strerror(errno)));
  }
}

RecordLog::~RecordLog() {
  try {
    sync();
  } catch (const Error&) {
    // Appends already reached the operating system; durability is best effort here.
  }
}

void RecordLog::append(const std::vector<std::string>& records) {
  std::string buffer;
  for (const std::string& r : records) {
    const uint32_t length = static_cast<uint32_t>(r.size()), crc = crc32(r);
    buffer.append(reinterpret_cast<const char*>(&length), 4);
    buffer.append(reinterpret_cast<const char*>(&crc), 4);
    buffer += r;
  }
  const Descriptor file(path_, O_WRONLY | O_APPEND | O_CLOEXEC);
  for (size_t done = 0; done < buffer.size();) {
    const ssize_t n = ::write(file.get(), buffer.data() + done, buffer.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::io(fmt::format("cannot append to '{}': {}", path_, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  dirty_ = true;
}

void RecordLog::sync() {
  if (!dirty_) return;
  const Descriptor file(path_, O_RDONLY | O_CLOEXEC);
  ::fsync(file.get());
  dirty_ = false;
}

void RecordLog::read(const std::string& path, const std::function<void(std::string_view)>& visit) {
  scan(path, visit);
}

}  // namespace convoy
