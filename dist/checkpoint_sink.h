// CheckpointSink: where a training job's periodic checkpoints go, without the training thread
// waiting: to the coordinator (CoordinatorReporter uploads them) or to a local CheckpointStore
// (LocalCheckpointSink writes them on a thread of its own). Both keep at most one checkpoint
// waiting: a newer one replaces it.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint_store.h"
#include "coordinator_reporter.h"

namespace convoy {

class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual void submit(pb::CheckpointHeader header, std::string bytes) = 0;
  // Waits up to `seconds` until everything submitted is stored; false if it was not.
  virtual bool flush(double seconds) = 0;
};

class CoordinatorCheckpointSink final : public CheckpointSink {
 public:
  explicit CoordinatorCheckpointSink(CoordinatorReporter& reporter) : reporter_(reporter) {}
  void submit(pb::CheckpointHeader header, std::string bytes) override {
    reporter_.upload_checkpoint(std::move(header), std::move(bytes));
  }
  bool flush(double seconds) override { return reporter_.flush(seconds); }

 private:
  CoordinatorReporter& reporter_;
};

class LocalCheckpointSink final : public CheckpointSink {
 public:
  // `warn` reports a failed write (the job goes on).
  LocalCheckpointSink(const std::string& dir, CheckpointStore::Options options,
                      std::function<void(const std::string&)> warn);
  ~LocalCheckpointSink() override;
  void submit(pb::CheckpointHeader header, std::string bytes) override;
  bool flush(double seconds) override;
  CheckpointStore& store() { return store_; }

 private:
  CheckpointStore store_;
  std::function<void(const std::string&)> warn_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::pair<pb::CheckpointHeader, std::string>> pending_;
  bool writing_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace convoy
