#include "dist/coordinator_client.h"

#include <fmt/format.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>

#include "core/checkpoint.h"
#include "core/error.h"
#include "dist/grpc_status.h"
#include "dist/sha256.h"
#include "proto/coordinator.grpc.pb.h"

namespace convoy {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

void quiet_grpc_logging() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
}

struct CoordinatorClient::Impl {
  explicit Impl(const CoordinatorAddress& where) : address(where) {
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (!where.tls_ca_pem.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = where.tls_ca_pem;
      credentials = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(4 << 20);
    args.SetMaxSendMessageSize(4 << 20);
    // Reconnect quickly once the coordinator is back (the default backoff grows to two minutes).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    stub = pb::Coordinator::NewStub(grpc::CreateCustomChannel(where.target, credentials, args));
  }

  // Runs `call` on a context with the token and a deadline, registered while in flight so that
  // cancel_all() can reach it; throws Error for a failed status.
  void run(std::string_view what, double timeout_seconds,
           const std::function<grpc::Status(grpc::ClientContext&)>& call) {
    grpc::ClientContext context;
    if (!address.token.empty()) context.AddMetadata("authorization", "Bearer " + address.token);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
    {
      std::lock_guard lock(mutex);
      active.insert(&context);
      if (cancelled) context.TryCancel();
    }
    const grpc::Status status = call(context);
    {
      std::lock_guard lock(mutex);
      active.erase(&context);
    }
    if (!status.ok()) throw error_from_status(status, what);
  }

  // A unary call of the stub's `method` through run().
  template <typename Request, typename Response>
  Response unary(std::string_view what, double timeout_seconds,
                 grpc::Status (pb::Coordinator::Stub::*method)(grpc::ClientContext*, const Request&,
                                                               Response*),
                 const Request& request) {
    Response response;
    run(what, timeout_seconds,
        [&](grpc::ClientContext& c) { return (stub.get()->*method)(&c, request, &response); });
    return response;
  }

  const CoordinatorAddress address;
  std::unique_ptr<pb::Coordinator::Stub> stub;
  std::mutex mutex;
  std::set<grpc::ClientContext*> active;
  bool cancelled = false;
};

CoordinatorClient::CoordinatorClient(const CoordinatorAddress& address)
    : address_(address), impl_(std::make_unique<Impl>(address)) {}

CoordinatorClient::~CoordinatorClient() = default;

void CoordinatorClient::cancel_all() {
  std::lock_guard lock(impl_->mutex);
  impl_->cancelled = true;
  for (grpc::ClientContext* context : impl_->active) context->TryCancel();
}

void CoordinatorClient::register_rank(const pb::RegisterRequest& request, double timeout_seconds) {
  impl_->unary("register", timeout_seconds, &pb::Coordinator::Stub::Register, request);
}

void CoordinatorClient::report_restart(const pb::RestartRecord& record, double timeout_seconds) {
  impl_->unary("report_restart", timeout_seconds, &pb::Coordinator::Stub::ReportRestart, record);
}

void CoordinatorClient::heartbeat(const pb::HeartbeatRequest& request, double timeout_seconds) {
  impl_->unary("heartbeat", timeout_seconds, &pb::Coordinator::Stub::Heartbeat, request);
}

void CoordinatorClient::report_metrics(const pb::MetricsBatch& batch, double timeout_seconds) {
  impl_->unary("report metrics", timeout_seconds, &pb::Coordinator::Stub::ReportMetrics, batch);
}

void CoordinatorClient::report_evaluation(const pb::EvaluationRecord& evaluation,
                                          double timeout_seconds) {
  impl_->unary("report evaluation", timeout_seconds, &pb::Coordinator::Stub::ReportEvaluation,
               evaluation);
}

pb::JobStatus CoordinatorClient::job_status(const std::string& job, double timeout_seconds) {
  pb::JobStatusRequest request;
  request.set_job_id(job);
  return impl_->unary("job status", timeout_seconds, &pb::Coordinator::Stub::GetJobStatus, request);
}

pb::MetricsPage CoordinatorClient::query_metrics(const pb::MetricsQuery& query,
                                                 double timeout_seconds) {
  return impl_->unary("query metrics", timeout_seconds, &pb::Coordinator::Stub::QueryMetrics,
                      query);
}

pb::CheckpointList CoordinatorClient::list_checkpoints(const std::string& job,
                                                       double timeout_seconds) {
  pb::ListCheckpointsRequest request;
  request.set_job_id(job);
  return impl_->unary("list checkpoints", timeout_seconds, &pb::Coordinator::Stub::ListCheckpoints,
                      request);
}

void CoordinatorClient::watch_metrics(const std::string& job,
                                      const std::function<void(const pb::MetricsBatch&)>& on_batch,
                                      double timeout_seconds) {
  pb::WatchRequest request;
  request.set_job_id(job);
  try {
    impl_->run("watch metrics", timeout_seconds, [&](grpc::ClientContext& c) {
      std::unique_ptr<grpc::ClientReader<pb::MetricsBatch>> reader =
          impl_->stub->WatchMetrics(&c, request);
      pb::MetricsBatch batch;
      while (reader->Read(&batch)) on_batch(batch);
      return reader->Finish();
    });
  } catch (const Error& e) {
    // The deadline or cancel_all() ends a watch: that is how it is meant to stop.
    if (e.kind() != ErrorKind::kUnavailable) throw;
  }
}

pb::CheckpointInfo CoordinatorClient::upload(pb::CheckpointInfo header, std::string_view bytes,
                                             double timeout_seconds) {
  header.set_size(bytes.size());
  header.set_sha256(sha256_hex(bytes));
  pb::CheckpointInfo info;
  impl_->run("checkpoint upload", timeout_seconds, [&](grpc::ClientContext& c) {
    std::unique_ptr<grpc::ClientWriter<pb::CheckpointChunk>> writer =
        impl_->stub->UploadCheckpoint(&c, &info);
    pb::CheckpointChunk chunk;
    *chunk.mutable_header() = header;
    size_t at = 0;
    do {
      const size_t n = std::min(kChunkBytes, bytes.size() - at);
      chunk.set_data(bytes.data() + at, n);
      at += n;
      if (!writer->Write(chunk)) break;
      chunk.clear_header();
    } while (at < bytes.size());
    writer->WritesDone();
    return writer->Finish();
  });
  return info;
}

std::string CoordinatorClient::download(const std::string& job, const std::string& name,
                                        pb::CheckpointInfo* header, double timeout_seconds) {
  pb::DownloadRequest request;
  request.set_job_id(job);
  request.set_name(name);
  std::string bytes;
  bool too_large = false;
  impl_->run("checkpoint download", timeout_seconds, [&](grpc::ClientContext& c) {
    std::unique_ptr<grpc::ClientReader<pb::CheckpointChunk>> reader =
        impl_->stub->DownloadCheckpoint(&c, request);
    pb::CheckpointChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.has_header()) {
        *header = chunk.header();
        // The size is the server's word: reserve a little of it; the bytes that arrive grow it.
        bytes.reserve(std::min<uint64_t>(header->size(), uint64_t{64} << 20));
      }
      bytes += chunk.data();
      if (bytes.size() > kMaxCheckpointBytes) {
        too_large = true;
        c.TryCancel();
        break;
      }
    }
    const grpc::Status status = reader->Finish();
    return too_large ? grpc::Status::OK : status;
  });
  if (too_large) {
    throw Error::corruption(fmt::format(
        "checkpoint download: more than {} bytes (no checkpoint is larger)", kMaxCheckpointBytes));
  }
  if (bytes.size() != header->size() || sha256_hex(bytes) != header->sha256()) {
    // Damaged in transit or on the server: not something the caller gave.
    throw Error::io("checkpoint download: size or sha256 mismatch");
  }
  return bytes;
}

}  // namespace convoy
