// CoordinatorClient: a connection to the coordinator, for workers and for `convoy monitor`. Every
// call is a typed method: it carries the bearer token and a deadline, and a failed call throws
// Error (kinds from dist/grpc_status.h: kUnavailable when the coordinator cannot be reached,
// kUnauthenticated for a wrong token, kNotFound, kInvalidInput, ...). gRPC stays inside dist/.
//
// Thread-safe: calls may run on several threads at once. cancel_all() ends every call in flight
// and makes later calls fail at once, so that an owner shutting down never waits for a deadline.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "dist/coordinator_address.h"
#include "proto/coordinator.pb.h"

namespace convoy {

// gRPC writes its own diagnostics to stderr; convoy reports every failure itself, in one line.
// Turns them off unless GRPC_VERBOSITY is set (for debugging). Call once, early.
void quiet_grpc_logging();

class CoordinatorClient {
 public:
  explicit CoordinatorClient(const CoordinatorAddress& address);
  ~CoordinatorClient();
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  const CoordinatorAddress& address() const { return address_; }

  // Workers.
  void register_rank(const pb::RegisterRequest& request, double timeout_seconds);
  void heartbeat(const pb::HeartbeatRequest& request, double timeout_seconds);
  void report_metrics(const pb::MetricsBatch& batch, double timeout_seconds);
  void report_evaluation(const pb::EvaluationRecord& evaluation, double timeout_seconds);
  // Streams `bytes` in 1 MiB chunks; the header's size and sha256 are filled in here. Returns
  // the stored checkpoint as the coordinator lists it.
  pb::CheckpointInfo upload(pb::CheckpointInfo header, std::string_view bytes,
                            double timeout_seconds = 600);

  // Launchers.
  void report_restart(const pb::RestartRecord& record, double timeout_seconds = 10);

  // Anyone with the token. An empty `job` means the most recently registered one.
  pb::JobStatus job_status(const std::string& job, double timeout_seconds = 10);
  pb::MetricsPage query_metrics(const pb::MetricsQuery& query, double timeout_seconds = 60);
  pb::CheckpointList list_checkpoints(const std::string& job, double timeout_seconds = 10);
  // The bytes of a checkpoint ("latest" or a name), checked against the header's size and
  // SHA-256 (Error: I/O otherwise); `header` receives the header.
  std::string download(const std::string& job, const std::string& name, pb::CheckpointInfo* header,
                       double timeout_seconds = 600);
  // Calls `on_batch` with every batch of new step records and evaluations of `job` until the
  // deadline passes, cancel_all() is called or the coordinator goes away (all three end it
  // quietly: a watcher learns of an outage from its other calls), or the call is refused (throws:
  // a wrong token, an unknown job).
  void watch_metrics(const std::string& job,
                     const std::function<void(const pb::MetricsBatch&)>& on_batch,
                     double timeout_seconds);

  void cancel_all();

 private:
  struct Impl;  // the channel, the stub and the calls in flight: gRPC stays in the .cc
  CoordinatorAddress address_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy
