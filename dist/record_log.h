// RecordLog: an append-only file of records, each framed as
//   uint32 length (little-endian) | uint32 CRC-32 of the payload | payload
// so that a crash mid-append leaves at most one damaged record at the end, which opening drops
// (the file is cut back to the last whole record). Appends go to the operating system at once
// (they survive a crash of the process); sync() makes them durable (the coordinator calls it
// about once a second). An append that fails (a full disk: perhaps half written) is cut back
// off the file, so later appends follow the last whole record; if even that fails, the next
// sync or append cuts it first. Writes go through a FileSystem (core/file_system.h). A log holds no
// file descriptor between calls: a coordinator with thousands of jobs keeps none open for them
// (each append opens, writes and closes). Not thread-safe: the owner serializes calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_system.h"

namespace convoy {

class RecordLog {
 public:
  // Opens (creating) `path` and calls `replay` with every intact record in order. Throws
  // Error (I/O: the log is the coordinator's own file) when the file cannot be opened.
  RecordLog(const std::string& path, const std::function<void(std::string_view)>& replay,
            FileSystem& file_system = FileSystem::local());
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // Throws Error (I/O), also when no file descriptor is to be had (EMFILE); then none of
  // `records` is in the log.
  void append(const std::vector<std::string>& records);
  // Cuts off what a failed append left that could not be cut then, and fsyncs. Throws Error (I/O)
  // when either fails; the next sync (or append) tries again.
  void sync();
  // Reads the intact records of a log file without opening it for writing.
  static void read(const std::string& path, const std::function<void(std::string_view)>& visit);
  // Replaces the log at `path` with exactly `records`, atomically (core/atomic_file.h): for
  // compacting a log while no RecordLog has it open. Throws Error (I/O).
  static void write(const std::string& path, const std::vector<std::string>& records,
                    FileSystem& file_system = FileSystem::local());

 private:
  std::string path_;
  FileSystem& file_system_;
  uint64_t size_ = 0;         // bytes of whole records
  bool cut_pending_ = false;  // a failed append left bytes after size_ that could not be cut
  bool dirty_ = false;        // appended since the last sync

  void cut_if_pending();
};

}  // namespace convoy
