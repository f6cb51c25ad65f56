// CheckpointSink: where a training job's periodic checkpoints go, without the training thread
// waiting: to the coordinator (CoordinatorReporter uploads them) or to a local CheckpointStore
// (LocalCheckpointSink). Both hand them to a NewestWinsWorker: at most one checkpoint waits, a
// newer one replaces it. The matching way back is CheckpointSource (checkpoint_source.h).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "dist/checkpoint_store.h"
#include "dist/coordinator_reporter.h"
#include "dist/newest_wins_worker.h"

namespace convoy {

class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual void submit(pb::CheckpointInfo header, std::string bytes) = 0;
  // Waits up to `seconds` until everything submitted is handled; false if it was not, or if the
  // newest checkpoint could not be stored (refused, or the disk failed).
  virtual bool flush(double seconds) = 0;
};

class CoordinatorCheckpointSink final : public CheckpointSink {
 public:
  explicit CoordinatorCheckpointSink(CoordinatorReporter& reporter) : reporter_(reporter) {}
  void submit(pb::CheckpointInfo header, std::string bytes) override {
    reporter_.upload_checkpoint(std::move(header), std::move(bytes));
  }
  bool flush(double seconds) override {
    return reporter_.flush(seconds) && !reporter_.stats().last_checkpoint_refused;
  }

 private:
  CoordinatorReporter& reporter_;
};

class LocalCheckpointSink final : public CheckpointSink {
 public:
  // `warn` reports a failed write (the job goes on). The destructor writes a pending checkpoint
  // before returning.
  LocalCheckpointSink(const std::string& dir, CheckpointStore::Options options,
                      std::function<void(const std::string&)> warn);
  void submit(pb::CheckpointInfo header, std::string bytes) override;
  bool flush(double seconds) override { return writes_.flush(seconds) && !last_failed_; }
  CheckpointStore& store() { return store_; }

 private:
  using Write = std::pair<pb::CheckpointInfo, std::string>;
  CheckpointStore store_;
  std::function<void(const std::string&)> warn_;
  std::atomic<bool> last_failed_{false};
  NewestWinsWorker<Write> writes_;  // last: its thread uses the members above
};

}  // namespace convoy
