#include "testing/fault_injecting_file_system.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace convoy::testing {

namespace {

using Op = FaultInjectingFileSystem::Op;

[[noreturn]] void fail(const std::string& path, Op op, int err) {
  throw Error::from_errno(
      err, fmt::format("'{}': cannot {} (injected)", path, FaultInjectingFileSystem::op_name(op)));
}

class FaultyFile final : public WritableFile {
 public:
  FaultyFile(FaultInjectingFileSystem& owner, std::string path, std::unique_ptr<WritableFile> base)
      : owner_(owner), path_(std::move(path)), base_(std::move(base)) {}

  void append(std::string_view data) override {
    FaultInjectingFileSystem::Fault fault;
    if (owner_.should_fail(Op::kAppend, path_, &fault)) {
      if (fault.short_write) base_->append(data.substr(0, data.size() / 2));
      fail(path_, Op::kAppend, fault.err);
    }
    base_->append(data);
  }
  void sync() override {
    FaultInjectingFileSystem::Fault fault;
    if (owner_.should_fail(Op::kSync, path_, &fault)) fail(path_, Op::kSync, fault.err);
    base_->sync();
  }
  void close() override {
    FaultInjectingFileSystem::Fault fault;
    // Like close(2): the descriptor is gone even when the call reports an error.
    const bool failing = owner_.should_fail(Op::kClose, path_, &fault);
    base_->close();
    if (failing) fail(path_, Op::kClose, fault.err);
  }

 private:
  FaultInjectingFileSystem& owner_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

const char* FaultInjectingFileSystem::op_name(Op op) {
  switch (op) {
    case Op::kOpen:
      return "open";
    case Op::kAppend:
      return "write";
    case Op::kSync:
      return "fsync";
    case Op::kClose:
      return "close";
    case Op::kRename:
      return "rename";
    case Op::kLink:
      return "link";
    case Op::kTruncate:
      return "truncate";
    case Op::kSyncDir:
      return "fsync the directory";
    case Op::kRemove:
      return "remove";
  }
  return "?";
}

FaultInjectingFileSystem::Fault typical_fault(FaultInjectingFileSystem::Op op) {
  switch (op) {
    case Op::kOpen:
      return {.err = ENOSPC};
    case Op::kAppend:
      return {.err = ENOSPC, .short_write = true};
    default:
      return {.err = EIO};
  }
}

void FaultInjectingFileSystem::fail_at(size_t index, Fault fault) {
  std::lock_guard lock(mutex_);
  fail_index_ = index;
  fault_ = fault;
}

void FaultInjectingFileSystem::fail_from(size_t index, Fault fault, std::vector<Op> spared) {
  std::lock_guard lock(mutex_);
  fail_index_ = index;
  fail_later_ = true;
  spared_ = std::move(spared);
  fault_ = fault;
}

void FaultInjectingFileSystem::fail_paths(std::string text, Fault fault) {
  std::lock_guard lock(mutex_);
  fail_text_ = std::move(text);
  fault_ = fault;
}

void FaultInjectingFileSystem::fail_kinds(std::vector<Op> kinds, Fault fault) {
  std::lock_guard lock(mutex_);
  fail_kinds_ = std::move(kinds);
  fault_ = fault;
}

void FaultInjectingFileSystem::clear() {
  std::lock_guard lock(mutex_);
  fail_index_ = SIZE_MAX;
  fail_later_ = false;
  spared_.clear();
  fail_text_.clear();
  fail_kinds_.clear();
}

std::vector<Op> FaultInjectingFileSystem::operations() const {
  std::lock_guard lock(mutex_);
  return operations_;
}

size_t FaultInjectingFileSystem::injected() const {
  std::lock_guard lock(mutex_);
  return injected_;
}

bool FaultInjectingFileSystem::should_fail(Op op, const std::string& path, Fault* fault) {
  std::lock_guard lock(mutex_);
  const size_t index = operations_.size();
  operations_.push_back(op);
  const bool spared = std::find(spared_.begin(), spared_.end(), op) != spared_.end();
  const bool failing = (fail_later_ ? index >= fail_index_ && !spared : index == fail_index_) ||
                       (!fail_text_.empty() && path.find(fail_text_) != std::string::npos) ||
                       std::find(fail_kinds_.begin(), fail_kinds_.end(), op) != fail_kinds_.end();
  if (failing) {
    ++injected_;
    *fault = fault_;
  }
  return failing;
}

std::unique_ptr<WritableFile> FaultInjectingFileSystem::open(const std::string& path, Mode mode) {
  Fault fault;
  if (should_fail(Op::kOpen, path, &fault)) fail(path, Op::kOpen, fault.err);
  return std::make_unique<FaultyFile>(*this, path, base_.open(path, mode));
}

void FaultInjectingFileSystem::rename(const std::string& from, const std::string& to) {
  Fault fault;
  if (should_fail(Op::kRename, to, &fault)) fail(to, Op::kRename, fault.err);
  base_.rename(from, to);
}

void FaultInjectingFileSystem::link(const std::string& from, const std::string& to) {
  Fault fault;
  if (should_fail(Op::kLink, to, &fault)) fail(to, Op::kLink, fault.err);
  base_.link(from, to);
}

void FaultInjectingFileSystem::truncate(const std::string& path, uint64_t size) {
  Fault fault;
  if (should_fail(Op::kTruncate, path, &fault)) fail(path, Op::kTruncate, fault.err);
  base_.truncate(path, size);
}

void FaultInjectingFileSystem::sync_dir(const std::string& dir) {
  Fault fault;
  if (should_fail(Op::kSyncDir, dir, &fault)) fail(dir, Op::kSyncDir, fault.err);
  base_.sync_dir(dir);
}

bool FaultInjectingFileSystem::remove(const std::string& path) {
  Fault fault;
  if (should_fail(Op::kRemove, path, &fault)) return false;
  return base_.remove(path);
}

}  // namespace convoy::testing
