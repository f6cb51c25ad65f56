#include "dist/coordinator_client.h"

#include <fmt/format.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>

#include "core/error.h"
#include "core/read_file.h"
#include "dist/grpc_status.h"
#include "dist/sha256.h"

namespace convoy {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t first = 0;
  while (first < s.size() && std::isspace(static_cast<unsigned char>(s[first]))) ++first;
  return s.substr(first);
}

}  // namespace

std::string read_token_file(const std::string& path) {
  std::string token = trim(read_file(path));
  if (token.empty()) throw Error::invalid_input(fmt::format("'{}' is empty", path));
  return token;
}

void quiet_grpc_logging() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
}

class CoordinatorClient::InFlight {
 public:
  InFlight(CoordinatorClient& client, grpc::ClientContext& context)
      : client_(client), context_(context) {
    std::lock_guard lock(client_.mutex_);
    client_.active_.insert(&context_);
    if (client_.cancelled_) context_.TryCancel();
  }
  ~InFlight() {
    std::lock_guard lock(client_.mutex_);
    client_.active_.erase(&context_);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  CoordinatorClient& client_;
  grpc::ClientContext& context_;
};

CoordinatorClient::CoordinatorClient(const CoordinatorAddress& address) : address_(address) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!address.tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = address.tls_ca_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  args.SetMaxSendMessageSize(4 << 20);
  // Reconnect quickly once the coordinator is back (the default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  channel_ = grpc::CreateCustomChannel(address.target, credentials, args);
  stub_ = pb::Coordinator::NewStub(channel_);
}

CoordinatorClient::~CoordinatorClient() = default;

void CoordinatorClient::cancel_all() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  for (grpc::ClientContext* context : active_) context->TryCancel();
}

void CoordinatorClient::prepare(grpc::ClientContext& context, double timeout_seconds) const {
  if (!address_.token.empty()) context.AddMetadata("authorization", "Bearer " + address_.token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
}

void CoordinatorClient::run(std::string_view what, double timeout_seconds,
                            const std::function<grpc::Status(grpc::ClientContext&)>& call) {
  grpc::ClientContext context;
  prepare(context, timeout_seconds);
  const InFlight in_flight(*this, context);
  const grpc::Status status = call(context);
  if (!status.ok()) throw error_from_status(status, what);
}

template <typename Request, typename Response>
Response CoordinatorClient::unary(
    std::string_view what, double timeout_seconds,
    grpc::Status (pb::Coordinator::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  Response response;
  run(what, timeout_seconds,
      [&](grpc::ClientContext& c) { return (stub_.get()->*method)(&c, request, &response); });
  return response;
}

void CoordinatorClient::register_rank(const pb::RegisterRequest& request, double timeout_seconds) {
  unary("register", timeout_seconds, &pb::Coordinator::Stub::Register, request);
}

void CoordinatorClient::heartbeat(const pb::HeartbeatRequest& request, double timeout_seconds) {
  unary("heartbeat", timeout_seconds, &pb::Coordinator::Stub::Heartbeat, request);
}

void CoordinatorClient::report_metrics(const pb::MetricsBatch& batch, double timeout_seconds) {
  unary("report metrics", timeout_seconds, &pb::Coordinator::Stub::ReportMetrics, batch);
}

void CoordinatorClient::report_evaluation(const pb::EvaluationRecord& evaluation,
                                          double timeout_seconds) {
  unary("report evaluation", timeout_seconds, &pb::Coordinator::Stub::ReportEvaluation, evaluation);
}

pb::JobStatus CoordinatorClient::job_status(const std::string& job, double timeout_seconds) {
  pb::JobStatusRequest request;
  request.set_job_id(job);
  return unary("job status", timeout_seconds, &pb::Coordinator::Stub::GetJobStatus, request);
}

pb::MetricsPage CoordinatorClient::query_metrics(const pb::MetricsQuery& query,
                                                 double timeout_seconds) {
  return unary("query metrics", timeout_seconds, &pb::Coordinator::Stub::QueryMetrics, query);
}

pb::CheckpointList CoordinatorClient::list_checkpoints(const std::string& job,
                                                       double timeout_seconds) {
  pb::ListCheckpointsRequest request;
  request.set_job_id(job);
  return unary("list checkpoints", timeout_seconds, &pb::Coordinator::Stub::ListCheckpoints,
               request);
}

void CoordinatorClient::watch_metrics(const std::string& job,
                                      const std::function<void(const pb::MetricsBatch&)>& on_batch,
                                      double timeout_seconds) {
  pb::WatchRequest request;
  request.set_job_id(job);
  try {
    run("watch metrics", timeout_seconds, [&](grpc::ClientContext& c) {
      std::unique_ptr<grpc::ClientReader<pb::MetricsBatch>> reader =
          stub_->WatchMetrics(&c, request);
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
  run("checkpoint upload", timeout_seconds, [&](grpc::ClientContext& c) {
    std::unique_ptr<grpc::ClientWriter<pb::CheckpointChunk>> writer =
        stub_->UploadCheckpoint(&c, &info);
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
  run("checkpoint download", timeout_seconds, [&](grpc::ClientContext& c) {
    std::unique_ptr<grpc::ClientReader<pb::CheckpointChunk>> reader =
        stub_->DownloadCheckpoint(&c, request);
    pb::CheckpointChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.has_header()) {
        *header = chunk.header();
        bytes.reserve(header->size());
      }
      bytes += chunk.data();
    }
    return reader->Finish();
  });
  if (bytes.size() != header->size() || sha256_hex(bytes) != header->sha256()) {
    throw Error::corruption("checkpoint download: size or sha256 mismatch");
  }
  return bytes;
}

}  // namespace convoy
