// RecordLog: an append-only file of records, each framed as
//   uint32 length (little-endian) | uint32 CRC-32 of the payload | payload
// so that a crash mid-append leaves at most one damaged record at the end, which opening drops
// (the file is cut back to the last whole record). Appends go to the operating system at once
// (they survive a crash of the process); sync() makes them durable (the coordinator calls it
// about once a second). A log holds no file descriptor between calls: a coordinator with
// thousands of jobs keeps none open for them (each append opens, writes and closes). Not
// thread-safe: the owner serializes calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace convoy {

class RecordLog {
 public:
  // Opens (creating) `path` and calls `replay` with every intact record in order. Throws
  // Error (I/O: the log is the coordinator's own file) when the file cannot be opened.
  RecordLog(const std::string& path, const std::function<void(std::string_view)>& replay);
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // Throw Error (I/O), also when no file descriptor is to be had (EMFILE).
  void append(const std::vector<std::string>& records);
  void sync();
  // Reads the intact records of a log file without opening it for writing.
  static void read(const std::string& path, const std::function<void(std::string_view)>& visit);

 private:
  std::string path_;
  bool dirty_ = false;  // appended since the last sync
};

}  // namespace convoy
