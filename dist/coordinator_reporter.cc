#include "coordinator_reporter.h"

#include <fmt/format.h>

#include <chrono>

namespace convoy {

namespace {

using Clock = std::chrono::steady_clock;

// Failures worth retrying: the coordinator or the network may come back.
bool transient(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

CoordinatorReporter::CoordinatorReporter(const CoordinatorAddress& address,
                                         pb::RegisterRequest identity, Options options,
                                         std::function<void(const std::string&)> warn)
    : client_(address), identity_(std::move(identity)), options_(options), warn_(std::move(warn)) {
  sender_ = std::thread([this] { send_loop(); });
  uploader_ = std::thread([this] { upload_loop(); });
}

CoordinatorReporter::~CoordinatorReporter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    // A call waiting for an unreachable coordinator would otherwise hold the join until its
    // deadline.
    for (grpc::ClientContext* context : active_) context->TryCancel();
  }
  work_.notify_all();
  uploads_.notify_all();
  sender_.join();
  uploader_.join();
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

void CoordinatorReporter::upload_checkpoint(pb::CheckpointHeader header, std::string bytes) {
  {
    std::lock_guard lock(mutex_);
    checkpoint_.emplace(std::move(header), std::move(bytes));
  }
  uploads_.notify_one();
}

bool CoordinatorReporter::flush(double seconds) {
  std::unique_lock lock(mutex_);
  ++flushing_;  // cuts any backoff short while we wait
  work_.notify_all();
  uploads_.notify_all();
  const bool done = idle_.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
    return steps_.empty() && evaluations_.empty() && !sending_ && !checkpoint_ && !uploading_;
  });
  --flushing_;
  return done;
}

CoordinatorReporter::Cancellable::Cancellable(CoordinatorReporter& reporter,
                                              grpc::ClientContext& context)
    : reporter_(reporter), context_(context) {
  std::lock_guard lock(reporter_.mutex_);
  reporter_.active_.insert(&context_);
  if (reporter_.stop_) context_.TryCancel();
}

CoordinatorReporter::Cancellable::~Cancellable() {
  std::lock_guard lock(reporter_.mutex_);
  reporter_.active_.erase(&context_);
}

uint64_t CoordinatorReporter::queued() const {
  std::lock_guard lock(mutex_);
  return steps_.size();
}

CoordinatorReporter::Stats CoordinatorReporter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

double CoordinatorReporter::failed(const grpc::Status& status, const std::string& what) {
  std::lock_guard lock(mutex_);
  ++stats_.failures;
  stats_.connected = false;
  if (!in_outage_) {
    in_outage_ = true;
    warn_(
        fmt::format("coordinator {} unreachable ({}: {}); training goes on and reporting "
                    "resumes when it is back",
                    client_.address().target, what, status.error_message()));
  }
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) registered_ = false;
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
      grpc::ClientContext context;
      client_.prepare(context, options_.rpc_timeout_seconds);
      const Cancellable cancellable(*this, context);
      pb::RegisterResponse response;
      const grpc::Status status = client_.stub().Register(&context, identity_, &response);
      if (!status.ok()) {
        pause(work_, failed(status, "register"));
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
      grpc::ClientContext context;
      client_.prepare(context, options_.rpc_timeout_seconds);
      const Cancellable cancellable(*this, context);
      pb::ReportMetricsResponse response;
      const grpc::Status status = client_.stub().ReportMetrics(&context, batch, &response);
      if (status.ok()) {
        std::lock_guard lock(mutex_);
        stats_.sent += static_cast<uint64_t>(batch.record_size());
      } else {
        {
          // Back to the front, in order, for the next attempt (within the queue's bound).
          std::lock_guard lock(mutex_);
          for (int i = batch.record_size(); i-- > 0;) {
            if (steps_.size() >= options_.queue_capacity) {
              ++stats_.dropped;
              continue;
            }
            steps_.push_front(batch.record(i));
          }
        }
        ok = false;
        pause(work_, failed(status, "report metrics"));
      }
    }
    if (ok && evaluation) {
      grpc::ClientContext context;
      client_.prepare(context, options_.rpc_timeout_seconds);
      const Cancellable cancellable(*this, context);
      pb::ReportEvaluationResponse response;
      const grpc::Status status = client_.stub().ReportEvaluation(&context, *evaluation, &response);
      if (!status.ok()) {
        {
          std::lock_guard lock(mutex_);
          evaluations_.push_front(*evaluation);
        }
        ok = false;
        pause(work_, failed(status, "report evaluation"));
      }
    }
    if (ok && Clock::now() - last_heartbeat >=
                  std::chrono::duration<double>(options_.heartbeat_seconds)) {
      grpc::ClientContext context;
      client_.prepare(context, options_.rpc_timeout_seconds);
      const Cancellable cancellable(*this, context);
      pb::HeartbeatRequest request;
      request.set_job_id(identity_.job_id());
      request.set_rank(identity_.rank());
      request.set_step(step);
      pb::HeartbeatResponse response;
      const grpc::Status status = client_.stub().Heartbeat(&context, request, &response);
      if (status.ok()) {
        last_heartbeat = Clock::now();
      } else {
        ok = false;
        pause(work_, failed(status, "heartbeat"));
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

void CoordinatorReporter::upload_loop() {
  for (;;) {
    std::pair<pb::CheckpointHeader, std::string> job;
    {
      std::unique_lock lock(mutex_);
      uploads_.wait(lock, [&] { return stop_ || checkpoint_.has_value(); });
      if (stop_) return;
      job = std::move(*checkpoint_);
      checkpoint_.reset();
      uploading_ = true;
    }
    try {
      grpc::ClientContext context;
      client_.prepare(context, options_.upload_timeout_seconds);
      const Cancellable cancellable(*this, context);
      client_.upload(context, job.first, job.second);
      std::lock_guard lock(mutex_);
      ++stats_.checkpoints_uploaded;
      uploading_ = false;
      idle_.notify_all();
    } catch (const CoordinatorError& e) {
      if (!transient(e.code())) {
        // The coordinator refused this checkpoint (too large, bad name, wrong token): say so and
        // drop it; retrying would not help.
        warn_(fmt::format("checkpoint at step {} refused by the coordinator: {}", job.first.step(),
                          e.what()));
        std::lock_guard lock(mutex_);
        ++stats_.failures;
        uploading_ = false;
        idle_.notify_all();
        continue;
      }
      const double wait = failed(grpc::Status(e.code(), e.what()), "checkpoint upload");
      {
        // Try again later, unless a newer checkpoint arrived meanwhile.
        std::lock_guard lock(mutex_);
        if (!checkpoint_) checkpoint_ = std::move(job);
        uploading_ = false;
      }
      pause(uploads_, wait);
    }
  }
}

}  // namespace convoy
