// A FileSystem (core/file_system.h) that fails on purpose, for tests of what convoy does when the
// disk fills, fsync reports an error or a rename fails. It passes every operation to a real file
// system and counts them; a test first runs an action to learn how many operations it makes,
// then runs it again once per operation with that one failing (LevelDB's fault-injection tests
// work the same way), or with every operation from that one on failing (a disk that filled up or
// broke and stays so: this reaches the code that runs only after a failure, such as putting a file
// back). Or it fails every operation on paths containing a given text (one job's directory on a
// full disk). Thread-safe.
#pragma once

#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "core/file_system.h"

namespace convoy::testing {

class FaultInjectingFileSystem final : public FileSystem {
 public:
  enum class Op { kOpen, kAppend, kSync, kClose, kRename, kLink, kTruncate, kSyncDir, kRemove };
  static const char* op_name(Op op);

  // How the chosen operation fails: with `err`; an append with short_write writes the first half
  // of its data before failing (what a disk filling mid-write does). A failing remove returns
  // false and removes nothing.
  struct Fault {
    int err = EIO;
    bool short_write = false;
  };

  explicit FaultInjectingFileSystem(FileSystem& base = FileSystem::local()) : base_(base) {}

  // Fails the operation with this index (0: the next one counted from now) and no other.
  void fail_at(size_t index, Fault fault);
  // Fails the operation with this index and every later one, except those of the `spared` kinds
  // (a full disk still removes and truncates files), until clear().
  void fail_from(size_t index, Fault fault, std::vector<Op> spared = {});
  // Fails every operation on a path containing `text` (until clear()).
  void fail_paths(std::string text, Fault fault);
  // Fails every operation of these kinds (until clear()).
  void fail_kinds(std::vector<Op> kinds, Fault fault);
  // No more faults (the disk works again). Counting goes on.
  void clear();

  // The operations so far, in order, and how many faults were injected.
  std::vector<Op> operations() const;
  size_t injected() const;

  std::unique_ptr<WritableFile> open(const std::string& path, Mode mode) override;
  void rename(const std::string& from, const std::string& to) override;
  void link(const std::string& from, const std::string& to) override;
  void truncate(const std::string& path, uint64_t size) override;
  void sync_dir(const std::string& dir) override;
  bool remove(const std::string& path) override;

  // For the files it opens: checks and counts an operation; true when it must fail.
  bool should_fail(Op op, const std::string& path, Fault* fault);

 private:
  FileSystem& base_;
  mutable std::mutex mutex_;
  std::vector<Op> operations_;
  size_t fail_index_ = SIZE_MAX;
  bool fail_later_ = false;  // every operation from fail_index_ on
  std::vector<Op> spared_;
  std::string fail_text_;
  std::vector<Op> fail_kinds_;
  Fault fault_;
  size_t injected_ = 0;
};

// The fault a test injects into each kind of operation: a full disk for writes and creations
// (half-written for appends), EIO for the rest.
FaultInjectingFileSystem::Fault typical_fault(FaultInjectingFileSystem::Op op);

}  // namespace convoy::testing
