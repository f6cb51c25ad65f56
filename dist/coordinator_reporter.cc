#include "dist/coordinator_reporter.h"

#include <fmt/format.h>

#include <chrono>
#include <future>

namespace convoy {

namespace {

using Clock = std::chrono::steady_clock;

// Failures worth retrying: the coordinator or the network may come back.
bool transient(const Error& e) {
  return e.kind() == ErrorKind::kUnavailable || e.kind() == ErrorKind::kInternal;
}

}  // namespace

CoordinatorReporter::CoordinatorReporter(const CoordinatorAddress& address,
                                         pb::RegisterRequest identity, Options options,
                                         std::function<void(const std::string&)> warn)
    : client_(address),
      identity_(std::move(identity)),
      options_(options),
      warn_(std::move(warn)),
      sender_([this] { send_loop(); }),
      uploads_([this](Upload& checkpoint) { return upload(checkpoint); }, /*drain=*/false) {}

CoordinatorReporter::~CoordinatorReporter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  // A call waiting for an unreachable coordinator would otherwise hold the join until its
  // deadline.
  client_.cancel_all();
  work_.notify_all();
  sender_.join();
}

void CoordinatorReporter::record_step(const pb::StepRecord& record) {
  {
    std::lock_guard lock(mutex_);
    if (steps_.size() >= options_.queue_capacity) {
      steps_.pop_front();
      ++stats_.dropped;
    }
    steps_.push_back(record);
    latest_step_ = std::max(latest_step_, record.step());
  }
  work_.notify_one();
}

void CoordinatorReporter::record_evaluation(const pb::EvaluationRecord& evaluation) {
  {
    std::lock_guard lock(mutex_);
    evaluations_.push_back(evaluation);
  }
  work_.notify_one();
}

void CoordinatorReporter::upload_checkpoint(pb::CheckpointInfo header, std::string bytes) {
  uploads_.submit({std::move(header), std::move(bytes)});
}

bool CoordinatorReporter::flush(double seconds) {
  // The checkpoint and the records are delivered side by side, each with the whole time.
  std::future<bool> uploaded =
      std::async(std::launch::async, [&] { return uploads_.flush(seconds); });
  bool done;
  {
    std::unique_lock lock(mutex_);
    ++flushing_;  // cuts any backoff short while we wait
    work_.notify_all();
    done = idle_.wait_for(lock, std::chrono::duration<double>(seconds),
                          [&] { return steps_.empty() && evaluations_.empty() && !sending_; });
    --flushing_;
  }
  return uploaded.get() && done;
}

uint64_t CoordinatorReporter::queued() const {
  std::lock_guard lock(mutex_);
  return steps_.size();
}

CoordinatorReporter::Stats CoordinatorReporter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

double CoordinatorReporter::failed(const Error& error) {
  std::lock_guard lock(mutex_);
  ++stats_.failures;
  stats_.connected = false;
  if (!in_outage_) {
    in_outage_ = true;
    warn_(
        fmt::format("coordinator {} unreachable ({}); training goes on and reporting resumes "
                    "when it is back",
                    client_.address().target, error.what()));
  }
  if (error.kind() == ErrorKind::kNotFound) registered_ = false;
  const double wait = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff_seconds);
  return wait;
}

void CoordinatorReporter::succeeded() {
  std::lock_guard lock(mutex_);
  stats_.connected = true;
  backoff_ = 0.5;
  if (in_outage_) {
    in_outage_ = false;
    warn_(fmt::format("reporting to coordinator {} resumed", client_.address().target));
  }
}

void CoordinatorReporter::pause(std::condition_variable& cv, double seconds) {
  std::unique_lock lock(mutex_);
  if (flushing_ > 0) {
    // Someone waits in flush(): retry soon, but do not spin on a coordinator that is down.
    cv.wait_for(lock, std::chrono::duration<double>(std::min(seconds, 0.25)),
                [&] { return stop_; });
    return;
  }
  // A flush() starting meanwhile cuts the backoff short.
  cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_ || flushing_ > 0; });
}

void CoordinatorReporter::send_loop() {
  Clock::time_point last_heartbeat{};
  for (;;) {
    bool registered;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      registered = registered_;
    }
    if (!registered) {
      try {
        client_.register_rank(identity_, options_.rpc_timeout_seconds);
      } catch (const Error& e) {
        pause(work_, failed(e));
        continue;
      }
      succeeded();
      std::lock_guard lock(mutex_);
      registered_ = true;
    }

    pb::MetricsBatch batch;
    batch.set_job_id(identity_.job_id());
    std::optional<pb::EvaluationRecord> evaluation;
    int64_t step;
    {
      std::lock_guard lock(mutex_);
      while (!steps_.empty() && batch.record_size() < static_cast<int>(options_.batch_records)) {
        *batch.add_record() = std::move(steps_.front());
        steps_.pop_front();
      }
      if (!evaluations_.empty()) {
        evaluation = std::move(evaluations_.front());
        evaluations_.pop_front();
      }
      step = latest_step_;
      sending_ = batch.record_size() > 0 || evaluation.has_value();
    }
    bool ok = true;
    if (batch.record_size() > 0) {
      try {
        client_.report_metrics(batch, options_.rpc_timeout_seconds);
        std::lock_guard lock(mutex_);
        stats_.sent += static_cast<uint64_t>(batch.record_size());
      } catch (const Error& e) {
        // Past the job's record quota at the coordinator, sending again would not help: the batch
        // is dropped (counted; said once) and heartbeats go on, so that the job is not taken for
        // gone. Anything else: back to the front, in order, for the next attempt (within the
        // queue's bound).
        const bool refused = e.kind() == ErrorKind::kLimitExceeded;
        {
          std::lock_guard lock(mutex_);
          if (refused) {
            stats_.dropped += static_cast<uint64_t>(batch.record_size());
          } else {
            for (int i = batch.record_size(); i-- > 0;) {
              if (steps_.size() >= options_.queue_capacity) {
                ++stats_.dropped;
                continue;
              }
              steps_.push_front(batch.record(i));
            }
          }
        }
        if (refused && !warned_quota_) {
          warned_quota_ = true;
          warn_(
              fmt::format("records refused by the coordinator, dropped from now on: {}", e.what()));
        }
        if (!refused) {
          ok = false;
          pause(work_, failed(e));
        }
      }
    }
    if (ok && evaluation) {
      try {
        client_.report_evaluation(*evaluation, options_.rpc_timeout_seconds);
      } catch (const Error& e) {
        {
          std::lock_guard lock(mutex_);
          evaluations_.push_front(*evaluation);
        }
        ok = false;
        pause(work_, failed(e));
      }
    }
    if (ok && Clock::now() - last_heartbeat >=
                  std::chrono::duration<double>(options_.heartbeat_seconds)) {
      pb::HeartbeatRequest request;
      request.set_job_id(identity_.job_id());
      request.set_rank(identity_.rank());
      request.set_step(step);
      {
        std::lock_guard lock(mutex_);
        request.set_records_dropped(stats_.dropped);
      }
      try {
        client_.heartbeat(request, options_.rpc_timeout_seconds);
        last_heartbeat = Clock::now();
      } catch (const Error& e) {
        ok = false;
        pause(work_, failed(e));
      }
    }
    {
      std::lock_guard lock(mutex_);
      sending_ = false;  // delivered, or back in the queues
    }
    if (!ok) continue;
    succeeded();
    std::unique_lock lock(mutex_);
    if (steps_.empty() && evaluations_.empty()) idle_.notify_all();
    // Gather a batch: wake when enough records are queued, or for the next heartbeat.
    work_.wait_for(lock, std::chrono::milliseconds(50), [&] {
      return stop_ || steps_.size() >= options_.batch_records || !evaluations_.empty();
    });
  }
}

std::optional<double> CoordinatorReporter::upload(Upload& checkpoint) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return std::nullopt;
  }
  try {
    client_.upload(checkpoint.first, checkpoint.second, options_.upload_timeout_seconds);
    std::lock_guard lock(mutex_);
    ++stats_.checkpoints_uploaded;
    stats_.last_checkpoint_refused = false;
    return std::nullopt;
  } catch (const Error& e) {
    if (!transient(e)) {
      // The coordinator refused this checkpoint (too large, bad name, wrong token): say so and
      // drop it; retrying would not help.
      warn_(fmt::format("checkpoint at step {} refused by the coordinator: {}",
                        checkpoint.first.step(), e.what()));
      std::lock_guard lock(mutex_);
      ++stats_.failures;
      stats_.last_checkpoint_refused = true;
      return std::nullopt;
    }
    return failed(e);  // try again later, unless a newer checkpoint arrives meanwhile
  }
}

}  // namespace convoy
