#include "dist/record_log.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/crc32.h"
#include "core/error.h"

namespace convoy {

namespace {

uint32_t le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // the project builds for little-endian machines (see npz_writer.cc)
  return v;
}

// Visits whole, checksummed records; returns the byte length of the intact prefix. A length
// beyond the end of the file ends the scan before anything is allocated for it.
uint64_t scan(const std::string& path, const std::function<void(std::string_view)>& visit) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    std::error_code error;
    if (!std::filesystem::exists(path, error) && !error) return 0;  // a new log
    // Unreadable is not empty: opening must not cut the log (or compact it) to nothing.
    throw Error::io(fmt::format("cannot read '{}'", path));
  }
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t good = 0;
  std::string payload;
  char header[8];
  while (in.read(header, 8)) {
    const uint32_t length = le32(header), crc = le32(header + 4);
    if (length > file_size - good - 8) break;
    payload.resize(length);
    if (!in.read(payload.data(), length) || crc32(payload) != crc) break;
    visit(payload);
    good += 8 + length;
  }
  // A read that failed (EIO) is not a torn tail: the rest must not be cut off.
  if (in.bad()) throw Error::io(fmt::format("cannot read '{}' past byte {}", path, good));
  return good;
}

// Records framed as the file holds them.
std::string frame(const std::vector<std::string>& records) {
  std::string buffer;
  for (const std::string& r : records) {
    const uint32_t length = static_cast<uint32_t>(r.size()), crc = crc32(r);
    buffer.append(reinterpret_cast<const char*>(&length), 4);
    buffer.append(reinterpret_cast<const char*>(&crc), 4);
    buffer += r;
  }
  return buffer;
}

}  // namespace

RecordLog::RecordLog(const std::string& path, const std::function<void(std::string_view)>& replay,
                     FileSystem& file_system)
    : path_(path), file_system_(file_system) {
  size_ = scan(path, replay);
  // Drop a damaged tail (a crash in the middle of an append): appends continue after the good part.
  as_io_error([&] {
    file_system_.open(path, FileSystem::Mode::kAppend)->close();
    file_system_.truncate(path, size_);
  });
}

RecordLog::~RecordLog() {
  try {
    sync();
  } catch (const Error&) {
    // Appends already reached the operating system; durability is best effort here.
  }
}

void RecordLog::append(const std::vector<std::string>& records) {
  const std::string buffer = frame(records);
  cut_if_pending();
  try {
    as_io_error([&] {
      const std::unique_ptr<WritableFile> file =
          file_system_.open(path_, FileSystem::Mode::kAppend);
      file->append(buffer);
      file->close();
    });
  } catch (const Error&) {
    // A part of the batch may be in the file: cut it off, so the next append does not follow a
    // damaged record (opening the log would stop there and lose everything after it).
    try {
      file_system_.truncate(path_, size_);
    } catch (const Error&) {
      cut_pending_ = true;
    }
    throw;
  }
  size_ += buffer.size();
  dirty_ = true;
}

void RecordLog::cut_if_pending() {
  if (!cut_pending_) return;
  as_io_error([&] { file_system_.truncate(path_, size_); });
  cut_pending_ = false;
  dirty_ = true;  // the cut is made durable by the fsync
}

void RecordLog::sync() {
  // A batch whose append failed was refused: it must not be in the file when it is next opened.
  cut_if_pending();
  if (!dirty_) return;
  as_io_error([&] {
    const std::unique_ptr<WritableFile> file = file_system_.open(path_, FileSystem::Mode::kAppend);
    file->sync();
    file->close();
  });
  dirty_ = false;
}

void RecordLog::read(const std::string& path, const std::function<void(std::string_view)>& visit) {
  scan(path, visit);
}

void RecordLog::write(const std::string& path, const std::vector<std::string>& records,
                      FileSystem& file_system) {
  try {
    write_file_atomically(path, frame(records), file_system);
  } catch (const Error& e) {
    throw Error::io(e.what());  // the log is the coordinator's own file
  }
}

}  // namespace convoy
