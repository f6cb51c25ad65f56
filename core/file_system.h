// FileSystem: the seam under every durable write convoy makes -- atomic files (checkpoints,
// manifests, exports), the coordinator's checkpoint uploads and its metrics logs. Code that
// writes takes a FileSystem& (FileSystem::local() by default) instead of calling the operating
// system, so that tests can put a fault-injecting implementation underneath
// (tests/testing/fault_injecting_file_system.h) and check every call site against a full disk, a
// failed fsync or a failed rename. The model is LevelDB's Env, cut down to what convoy writes.
//
// Errors: every operation that fails throws Error from errno (core/error.h): kind kIo when the
// machine failed (ENOSPC, EIO, EDQUOT, ...), kInvalidInput when the path cannot be used (missing
// directory, no permission). The message is one line naming the path and the operation.
// remove() is the exception: removing is cleanup, best effort, and reports failure by returning
// false. Reads do not go through the seam (a failed read is not a durability question).
// Implementations are thread-safe; a WritableFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace convoy {

class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the file if close() was not called (no sync)
  // Writes all of `data` (retrying short writes and EINTR) or throws; after a throw, a part of
  // `data` may have been written.
  virtual void append(std::string_view data) = 0;
  // fsync: what was appended is on the disk.
  virtual void sync() = 0;
  // Closes; a failure here can mean that earlier writes were lost (NFS, some disks).
  virtual void close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  enum class Mode {
    kCreateNew,  // O_CREAT | O_EXCL, mode 0644: fails (EEXIST) when the file exists
    kAppend,     // O_CREAT | O_APPEND: writes go to the end
  };
  virtual std::unique_ptr<WritableFile> open(const std::string& path, Mode mode) = 0;
  // rename(2): replaces `to` atomically.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // link(2): `to` (which must not exist) names the file `from` names.
  virtual void link(const std::string& from, const std::string& to) = 0;
  // Cuts `path` to `size` bytes.
  virtual void truncate(const std::string& path, uint64_t size) = 0;
  // fsync of a directory: the renames and creations in it are on the disk.
  virtual void sync_dir(const std::string& dir) = 0;
  // Best effort; false when the file could not be removed (a missing file counts as removed).
  virtual bool remove(const std::string& path) = 0;

  // The operating system's file system. Never destroyed: it stays usable from static destructors
  // and atexit handlers.
  static FileSystem& local();
};

}  // namespace convoy
