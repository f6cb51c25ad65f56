// CoordinatorReporter: how a training rank talks to the coordinator without ever waiting for it.
//
// The training thread only puts things in bounded queues: step records and evaluations (the
// oldest step records are dropped, and counted, if the queue fills while the coordinator is
// away) and, on rank 0, checkpoints (a newer one replaces one not yet sent: NewestWinsWorker). A
// sender thread registers the rank, sends heartbeats about once a second and the queued records in
// batches; the checkpoint worker's thread streams checkpoints. When the coordinator is unreachable
// both retry with exponential backoff (up to 10 s), the first failure of an outage is reported once
// through `warn`, and so is the recovery; a coordinator that restarted and forgot the rank
// (NOT_FOUND) gets a new registration.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dist/coordinator_client.h"
#include "dist/newest_wins_worker.h"

namespace convoy {

class CoordinatorReporter {
 public:
  struct Options {
    size_t queue_capacity = 100000;  // step records held while the coordinator is unreachable
    size_t batch_records = 1000;     // at most this many per ReportMetrics call
    double heartbeat_seconds = 1.0;
    double rpc_timeout_seconds = 5.0;
    double upload_timeout_seconds = 600.0;
    double max_backoff_seconds = 10.0;
  };
  struct Stats {
    uint64_t sent = 0;     // step records delivered
    uint64_t dropped = 0;  // step records dropped: the queue was full, or past the job's quota
    uint64_t checkpoints_uploaded = 0;
    bool last_checkpoint_refused = false;  // the newest checkpoint handled was refused
    uint64_t failures = 0;                 // failed calls
    bool connected = false;
  };

  CoordinatorReporter(const CoordinatorAddress& address, pb::RegisterRequest identity,
                      Options options, std::function<void(const std::string&)> warn);
  ~CoordinatorReporter();
  CoordinatorReporter(const CoordinatorReporter&) = delete;
  CoordinatorReporter& operator=(const CoordinatorReporter&) = delete;

  void record_step(const pb::StepRecord& record);
  void record_evaluation(const pb::EvaluationRecord& evaluation);
  void upload_checkpoint(pb::CheckpointInfo header, std::string bytes);
  const CoordinatorAddress& address() const { return client_.address(); }

  // Waits up to `seconds` until everything queued has been delivered; false if it was not.
  bool flush(double seconds);
  Stats stats() const;
  // Step records waiting to be sent.
  uint64_t queued() const;

 private:
  using Upload = std::pair<pb::CheckpointInfo, std::string>;
  void send_loop();
  // The checkpoint worker's step: nothing when done, or seconds to wait before a retry.
  std::optional<double> upload(Upload& checkpoint);
  // Records a failed call; warns at the first failure of an outage. Returns the backoff to wait.
  double failed(const Error& error);
  void succeeded();
  // Sleeps up to `seconds` or until stop; while a flush() waits, at most 0.25 s.
  void pause(std::condition_variable& cv, double seconds);

  CoordinatorClient client_;
  pb::RegisterRequest identity_;
  Options options_;
  std::function<void(const std::string&)> warn_;

  mutable std::mutex mutex_;
  std::condition_variable work_, idle_;
  std::deque<pb::StepRecord> steps_;
  std::deque<pb::EvaluationRecord> evaluations_;
  bool sending_ = false;  // records taken from the queues are in flight
  int64_t latest_step_ = 0;
  bool registered_ = false;
  bool in_outage_ = false;
  bool warned_quota_ = false;  // the sender thread's own
  double backoff_ = 0.5;
  bool stop_ = false;
  int flushing_ = 0;  // flush() calls waiting
  Stats stats_;
  std::thread sender_;                // starts once the members above exist
  NewestWinsWorker<Upload> uploads_;  // last: its thread starts once the members above exist
};

}  // namespace convoy
