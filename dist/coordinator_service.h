// The coordinator: a long-running gRPC server that training jobs report to, and that people query
// from elsewhere (`convoy coordinator`, `convoy monitor`).
//
// The protocol (proto/coordinator.proto), who calls what and when:
//   1. Every rank of a job calls Register(job, rank, world size, host, pid) when it starts, and
//      again whenever a call fails with NOT_FOUND (the coordinator restarted and forgot it).
//   2. Every rank calls Heartbeat(step) about once a second, and ReportMetrics with batches of
//      step records (step, epoch, loss, accuracy, images/s, step and all-reduce seconds) as they
//      accumulate; rank 0 calls ReportEvaluation after each epoch's evaluation. All of these come
//      from a background sender with a bounded queue: training never waits for the coordinator,
//      and keeps going (warning once) while it is unreachable.
//   3. Rank 0 calls UploadCheckpoint every --checkpoint-every steps: a client stream whose first
//      chunk carries the header (size, SHA-256, epoch, step, test accuracy). The checkpoint is
//      stored only if the bytes match the header (see checkpoint_store.h).
//   4. Anyone holding the token calls GetJobStatus (ranks alive/stalled/gone, throughput, latest
//      metrics), QueryMetrics (a step range, paged), WatchMetrics (a server stream of new records
//      as they arrive), ListCheckpoints and DownloadCheckpoint (a server stream; "latest" names the
//      newest valid one). A resuming job downloads its latest checkpoint this way.
//   5. A launcher (`convoy launch`) calls ReportRestart each time it starts a job again after a
//      failure; GetJobStatus then counts the restarts (kept, like registrations, across restarts
//      of the coordinator: dist/job_registry.h).
//
// Security and limits: with a token configured, every call of this service without
// "authorization: Bearer <token>" fails with UNAUTHENTICATED; the standard health service stays
// open (probes carry no token), and server reflection requires the token too (an interceptor
// checks it, since gRPC's reflection service cannot). TLS when a certificate and key are given.
// Messages are limited to 4 MiB (checkpoints travel in 1 MiB chunks), checkpoints to
// --max-checkpoint-mb, queries to 10,000 records per page, uploads to 16 at once, each ended
// after 60 s without data.
//
// State lives under the state directory: metrics/<job>/{steps,evaluations}.log and
// checkpoints/<job>/ (see metrics_store.h, checkpoint_store.h). It survives restarts; memory holds
// only the newest records of each job.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "dist/checkpoint_store.h"
#include "dist/clock.h"
#include "dist/job_registry.h"
#include "dist/metrics_store.h"
#include "dist/prometheus_metrics.h"
#include "dist/tensorboard_writer.h"
#include "proto/coordinator.grpc.pb.h"

namespace convoy {

struct CoordinatorOptions {
  std::string state_dir;
  std::string tensorboard_dir;  // empty: no TensorBoard event files (dist/tensorboard_writer.h)
  std::string auth_token;       // empty: no authentication
  std::string tls_cert_file, tls_key_file;  // both empty: plaintext
  double stall_after_seconds = 60;
  double gone_after_seconds = 30;
  size_t memory_records = 100000;  // newest step records kept in memory, per job
  CheckpointStore::Options checkpoints;
  int32_t max_query_records = 10000;
  // An upload that sends nothing for this long is ended (its temporary file removed), and at most
  // this many uploads run at once (each holds a server thread and a file): a client that opens
  // uploads and stalls cannot exhaust the coordinator.
  double upload_idle_seconds = 60;
  int max_concurrent_uploads = 16;
  // Per job, so that one job cannot fill the disk for the others: step and evaluation records
  // stored (more are refused: RESOURCE_EXHAUSTED); checkpoints.max_total_bytes bounds its stored
  // checkpoints.
  uint64_t max_job_records = 100'000'000;
  // Every write of the state directory goes through it (it replaces checkpoints.file_system).
  FileSystem* file_system = &FileSystem::local();
};

// A stored checkpoint opened for serving (CoordinatorService::open_checkpoint): its listing and
// an open descriptor, which reads the file even if retention deletes it meanwhile.
class OpenCheckpoint {
 public:
  explicit OpenCheckpoint(const std::string& path);
  ~OpenCheckpoint();
  OpenCheckpoint(const OpenCheckpoint&) = delete;
  OpenCheckpoint& operator=(const OpenCheckpoint&) = delete;
  // Up to `bytes` from `offset`; 0 at the end. Throws Error (I/O).
  size_t read(uint64_t offset, char* out, size_t bytes) const;

  pb::CheckpointInfo info;

 private:
  friend class CoordinatorService;
  std::string path_;
  int fd_;
};

class CoordinatorService final : public pb::Coordinator::Service {
 public:
  CoordinatorService(const CoordinatorOptions& options, const Clock& clock);

  grpc::Status Register(grpc::ServerContext*, const pb::RegisterRequest*,
                        pb::RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest*,
                         pb::HeartbeatResponse*) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const pb::MetricsBatch*,
                             pb::ReportMetricsResponse*) override;
  grpc::Status ReportEvaluation(grpc::ServerContext*, const pb::EvaluationRecord*,
                                pb::ReportEvaluationResponse*) override;
  grpc::Status ReportRestart(grpc::ServerContext*, const pb::RestartRecord*,
                             pb::ReportRestartResponse*) override;
  grpc::Status UploadCheckpoint(grpc::ServerContext*, grpc::ServerReader<pb::CheckpointChunk>*,
                                pb::CheckpointInfo*) override;
  grpc::Status GetJobStatus(grpc::ServerContext*, const pb::JobStatusRequest*,
                            pb::JobStatus*) override;
  grpc::Status QueryMetrics(grpc::ServerContext*, const pb::MetricsQuery*,
                            pb::MetricsPage*) override;
  grpc::Status WatchMetrics(grpc::ServerContext*, const pb::WatchRequest*,
                            grpc::ServerWriter<pb::MetricsBatch>*) override;
  grpc::Status ListCheckpoints(grpc::ServerContext*, const pb::ListCheckpointsRequest*,
                               pb::CheckpointList*) override;
  grpc::Status DownloadCheckpoint(grpc::ServerContext*, const pb::DownloadRequest*,
                                  grpc::ServerWriter<pb::CheckpointChunk>*) override;

  // Durability: flush metrics to disk (the server calls this about once a second).
  void sync() {
    metrics_.sync();
    registry_.sync();
    if (tensorboard_) tensorboard_->sync();
  }
  // Ends uploads idle for longer than upload_idle_seconds (the server calls this ten times a
  // second).
  void expire_idle_uploads();
  // Unblocks streaming calls so that a shutdown does not wait for watchers.
  void stop() { stopping_ = true; }

  // What /metrics reports (dist/prometheus_metrics.h): every job's status, its stored
  // checkpoints, and the calls answered so far by method and status code.
  CoordinatorSnapshot snapshot();

  // For the dashboard (dist/coordinator_http.h), which checks the token itself:
  // The status GetJobStatus answers; false for an unknown job ("" : the latest).
  bool job_status(const std::string& job, pb::JobStatus* status);
  std::vector<std::string> jobs() const { return registry_.jobs(); }
  const MetricsStore& metrics() const { return metrics_; }
  std::vector<pb::CheckpointInfo> list_checkpoints(const std::string& job);
  // The checkpoint `name` ("latest": the newest valid) of `job`, verified against its SHA-256
  // first (a damaged file is marked corrupt and never served). Throws Error (invalid input,
  // not found, I/O).
  std::unique_ptr<OpenCheckpoint> open_checkpoint(const std::string& job, const std::string& name);

 private:
  template <typename F>
  grpc::Status answer(const char* method, F&& body);
  // Throw Error (unauthenticated, invalid input).
  void check_token(grpc::ServerContext* context) const;
  void check_job(const std::string& job) const;
  CheckpointStore& checkpoints(const std::string& job);

  CoordinatorOptions options_;
  const Clock& clock_;
  JobRegistry registry_;
  MetricsStore metrics_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  std::mutex stores_mutex_;
  std::map<std::string, std::unique_ptr<CheckpointStore>> stores_;
  std::atomic<bool> stopping_{false};
  std::mutex uploads_mutex_;
  std::map<grpc::ServerContext*, double> uploads_;  // in progress: when each last sent data
  std::mutex calls_mutex_;
  std::map<std::pair<std::string, int>, uint64_t> calls_;
  std::map<std::string, std::pair<SecondsHistogram, SecondsHistogram>>
      timings_;  // step, all-reduce
};

// The service with health checking and server reflection on a listening port.
class CoordinatorServer {
 public:
  // `listen` is host:port; port 0 picks a free one (see port()). Throws Error when
  // the address cannot be bound or the TLS files cannot be read.
  CoordinatorServer(const CoordinatorOptions& options, const std::string& listen,
                    const Clock& clock);
  ~CoordinatorServer();

  int port() const { return port_; }
  CoordinatorService& service() { return service_; }
  // A channel to this server inside the process (no socket), through the same interceptors and
  // limits as the port; for in-process clients such as the fuzz targets.
  std::shared_ptr<grpc::Channel> in_process_channel();
  void wait() { server_->Wait(); }
  void shutdown();

 private:
  CoordinatorService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> running_{true};
  std::thread syncer_;
};

}  // namespace convoy
