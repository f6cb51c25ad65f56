#include "dist/coordinator_service.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/read_file.h"
#include "dist/coordinator_address.h"
#include "dist/grpc_status.h"
#include "dist/sha256.h"

namespace convoy {

namespace {

constexpr size_t kChunkBytes = 1 << 20;
constexpr int kMaxMessageBytes = 4 << 20;

// Checks the bearer token for the services convoy does not implement itself (server reflection):
// an unauthenticated call has every message it would send emptied and its status replaced by
// UNAUTHENTICATED, so nothing of the service's answer leaves the server.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string expected) : expected_(std::move(expected)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      const auto it = metadata->find("authorization");
      refused_ = it == metadata->end() ||
                 !same_secret(std::string_view(it->second.data(), it->second.size()), expected_);
    }
    if (refused_ && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_MESSAGE)) {
      *methods->GetSerializedSendMessage() = grpc::ByteBuffer();
    }
    if (refused_ && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      methods->ModifySendStatus(to_status(Error::unauthenticated("missing or wrong bearer token")));
    }
    methods->Proceed();
  }

 private:
  std::string expected_;
  bool refused_ = false;
};

class TokenInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : expected_("Bearer " + std::move(token)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const std::string_view method = info->method();
    if (method.starts_with("/grpc.health.v1.Health/") ||
        method.starts_with("/convoy.pb.Coordinator/")) {
      return nullptr;  // health is open; convoy's own service checks the token itself
    }
    return new TokenInterceptor(expected_);
  }

 private:
  std::string expected_;
};

}  // namespace

namespace {

// Where the job registry keeps registrations (the state directory is created first: the registry
// is the first member to open a file there).
std::string registry_log(const std::string& state_dir) {
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  if (error) {
    throw Error::from_errno(error.value(), fmt::format("cannot create '{}'", state_dir));
  }
  return (std::filesystem::path(state_dir) / "registrations.log").string();
}

}  // namespace

CoordinatorService::CoordinatorService(const CoordinatorOptions& options, const Clock& clock)
    : options_(options),
      clock_(clock),
      registry_(clock, options.stall_after_seconds, options.gone_after_seconds,
                registry_log(options.state_dir), *options.file_system),
      metrics_((std::filesystem::path(options.state_dir) / "metrics").string(),
               options.memory_records, *options.file_system, options.max_job_records) {
  if (!options.tensorboard_dir.empty()) {
    tensorboard_ = std::make_unique<TensorBoardWriter>(
        options.tensorboard_dir,
        [](const std::string& m) { fmt::print(stderr, "convoy coordinator: {}\n", m); });
  }
  // Open (and so re-verify) every job's checkpoints now, not at the first request.
  const std::filesystem::path root = std::filesystem::path(options.state_dir) / "checkpoints";
  std::filesystem::create_directories(root);
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string job = entry.path().filename().string();
    if (!entry.is_directory() || !valid_job_id(job)) continue;
    try {
      checkpoints(job);
    } catch (const Error& e) {
      // One job's unreadable directory must not keep the others from being served: that job's
      // calls fail with the same error (the store is opened again at its next call).
      fmt::print(stderr, "convoy coordinator: job {}: checkpoints unavailable: {}\n", job,
                 e.what());
    }
  }
}

void CoordinatorService::check_token(grpc::ServerContext* context) const {
  if (options_.auth_token.empty()) return;
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  const std::string expected = "Bearer " + options_.auth_token;
  if (it == metadata.end() ||
      !same_secret(std::string_view(it->second.data(), it->second.size()), expected)) {
    throw Error::unauthenticated("missing or wrong bearer token");
  }
}

void CoordinatorService::check_job(const std::string& job) const {
  if (valid_job_id(job)) return;
  // Echo a bounded, printable part: an error's text travels back in gRPC metadata.
  std::string shown;
  for (size_t i = 0; i < job.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(job[i]);
    shown += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  throw Error::invalid_input(
      fmt::format("job id '{}{}' is not allowed (1-64 of [A-Za-z0-9._-], not starting with '.')",
                  shown, job.size() > 64 ? "..." : ""));
}

CheckpointStore& CoordinatorService::checkpoints(const std::string& job) {
  std::lock_guard lock(stores_mutex_);
  std::unique_ptr<CheckpointStore>& store = stores_[job];
  if (!store) {
    try {
      CheckpointStore::Options store_options = options_.checkpoints;
      store_options.file_system = options_.file_system;
      store = std::make_unique<CheckpointStore>(
          (std::filesystem::path(options_.state_dir) / "checkpoints" / job).string(),
          store_options);
    } catch (const Error& e) {
      throw Error::io(e.what());  // the coordinator's own directory: never the caller's fault
    }
    for (const std::string& note : store->notes()) {
      fmt::print(stderr, "convoy coordinator: job {}: {}\n", job, note);
    }
    for (const pb::CheckpointInfo& c : store->list()) {
      if (c.corrupt()) {
        fmt::print(stderr,
                   "convoy coordinator: job {}: checkpoint '{}' is corrupt on disk; "
                   "listed as corrupt, not served\n",
                   job, c.name());
      }
    }
  }
  return *store;
}

// Runs a call's body: an Error it throws becomes the call's status, through the one mapping in
// dist/grpc_status.h; the call is counted by method and status code (for /metrics).
template <typename F>
grpc::Status CoordinatorService::answer(const char* method, F&& body) {
  grpc::Status status = grpc::Status::OK;
  try {
    body();
  } catch (const Error& e) {
    status = to_status(e);
  }
  std::lock_guard lock(calls_mutex_);
  ++calls_[{method, status.error_code()}];
  return status;
}

grpc::Status CoordinatorService::Register(grpc::ServerContext* context,
                                          const pb::RegisterRequest* request,
                                          pb::RegisterResponse*) {
  return answer("Register", [&] {
    check_token(context);
    check_job(request->job_id());
    registry_.register_rank(*request);
    if (tensorboard_) tensorboard_->registered(*request);
  });
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* context,
                                           const pb::HeartbeatRequest* request,
                                           pb::HeartbeatResponse*) {
  return answer("Heartbeat", [&] {
    check_token(context);
    check_job(request->job_id());
    if (!registry_.heartbeat(*request)) {
      throw Error::not_found("rank not registered: call Register first");
    }
  });
}

grpc::Status CoordinatorService::ReportMetrics(grpc::ServerContext* context,
                                               const pb::MetricsBatch* batch,
                                               pb::ReportMetricsResponse*) {
  return answer("ReportMetrics", [&] {
    check_token(context);
    check_job(batch->job_id());
    metrics_.append(batch->job_id(), {batch->record().begin(), batch->record().end()});
    for (const pb::StepRecord& r : batch->record()) registry_.observe(batch->job_id(), r);
    if (tensorboard_) {
      tensorboard_->steps(batch->job_id(), {batch->record().begin(), batch->record().end()});
    }
    std::lock_guard lock(calls_mutex_);
    auto& [step, allreduce] = timings_[batch->job_id()];
    for (const pb::StepRecord& r : batch->record()) {
      step.observe(r.step_seconds());
      allreduce.observe(r.allreduce_seconds());
    }
  });
}

grpc::Status CoordinatorService::ReportEvaluation(grpc::ServerContext* context,
                                                  const pb::EvaluationRecord* record,
                                                  pb::ReportEvaluationResponse*) {
  return answer("ReportEvaluation", [&] {
    check_token(context);
    check_job(record->job_id());
    metrics_.append(record->job_id(), *record);
    if (tensorboard_) tensorboard_->evaluation(record->job_id(), *record);
  });
}

grpc::Status CoordinatorService::ReportRestart(grpc::ServerContext* context,
                                               const pb::RestartRecord* record,
                                               pb::ReportRestartResponse*) {
  return answer("ReportRestart", [&] {
    check_token(context);
    check_job(record->job_id());
    registry_.record_restart(*record);
  });
}

void CoordinatorService::expire_idle_uploads() {
  std::lock_guard lock(uploads_mutex_);
  const double now = clock_.now();
  for (const auto& [context, last] : uploads_) {
    if (now - last > options_.upload_idle_seconds) context->TryCancel();
  }
}

grpc::Status CoordinatorService::UploadCheckpoint(grpc::ServerContext* context,
                                                  grpc::ServerReader<pb::CheckpointChunk>* reader,
                                                  pb::CheckpointInfo* info) {
  return answer("UploadCheckpoint", [&] {
    check_token(context);
    // Registered while it runs, so that expire_idle_uploads() can end it.
    struct InProgress {
      CoordinatorService& service;
      grpc::ServerContext* context;
      InProgress(CoordinatorService& s, grpc::ServerContext* c) : service(s), context(c) {
        std::lock_guard lock(service.uploads_mutex_);
        if (static_cast<int>(service.uploads_.size()) >= service.options_.max_concurrent_uploads) {
          // Unavailable, not refused: the same upload may succeed a moment later (workers retry).
          throw Error::unavailable(fmt::format(
              "{} uploads are in progress already; try again later", service.uploads_.size()));
        }
        service.uploads_[context] = service.clock_.now();
      }
      ~InProgress() {
        std::lock_guard lock(service.uploads_mutex_);
        service.uploads_.erase(context);
      }
      void touch() {
        std::lock_guard lock(service.uploads_mutex_);
        service.uploads_[context] = service.clock_.now();
      }
    } in_progress(*this, context);
    pb::CheckpointChunk chunk;
    if (!reader->Read(&chunk) || !chunk.has_header()) {
      throw Error::invalid_input("the first chunk must carry the header");
    }
    check_job(chunk.header().job_id());
    std::unique_ptr<CheckpointStore::Upload> upload =
        checkpoints(chunk.header().job_id()).begin(chunk.header());
    upload->write(chunk.data());
    while (reader->Read(&chunk)) {
      in_progress.touch();
      if (chunk.has_header()) {
        throw Error::invalid_input("a header may come in the first chunk only");
      }
      upload->write(chunk.data());
    }
    if (context->IsCancelled()) throw Error::unavailable("upload abandoned or idle too long");
    *info = upload->commit();
  });
}

grpc::Status CoordinatorService::GetJobStatus(grpc::ServerContext* context,
                                              const pb::JobStatusRequest* request,
                                              pb::JobStatus* status) {
  return answer("GetJobStatus", [&] {
    check_token(context);
    if (!request->job_id().empty()) check_job(request->job_id());
    if (!job_status(request->job_id(), status)) {
      throw Error::not_found(request->job_id().empty()
                                 ? "no job has registered yet"
                                 : fmt::format("no job '{}'", request->job_id()));
    }
  });
}

bool CoordinatorService::job_status(const std::string& job, pb::JobStatus* status) {
  if (!registry_.status(job, status)) return false;
  status->set_records(static_cast<int64_t>(metrics_.step_records(status->job_id())));
  metrics_.latest_evaluation(status->job_id(), status->mutable_latest_evaluation());
  return true;
}

CoordinatorSnapshot CoordinatorService::snapshot() {
  CoordinatorSnapshot snapshot;
  for (const std::string& job : registry_.jobs()) {
    CoordinatorSnapshot::Job j;
    if (!job_status(job, &j.status)) continue;
    j.status.clear_jobs();
    for (const pb::CheckpointInfo& c : checkpoints(job).list()) {
      if (c.corrupt()) continue;
      ++j.checkpoints;
      j.checkpoint_bytes += c.size();
    }
    snapshot.jobs.push_back(std::move(j));
  }
  std::lock_guard lock(calls_mutex_);
  for (CoordinatorSnapshot::Job& j : snapshot.jobs) {
    if (const auto t = timings_.find(j.status.job_id()); t != timings_.end()) {
      std::tie(j.step_seconds, j.allreduce_seconds) = t->second;
    }
  }
  snapshot.calls = calls_;
  return snapshot;
}

grpc::Status CoordinatorService::QueryMetrics(grpc::ServerContext* context,
                                              const pb::MetricsQuery* query,
                                              pb::MetricsPage* page) {
  return answer("QueryMetrics", [&] {
    check_token(context);
    check_job(query->job_id());
    *page = metrics_.query(*query, options_.max_query_records);
  });
}

grpc::Status CoordinatorService::WatchMetrics(grpc::ServerContext* context,
                                              const pb::WatchRequest* request,
                                              grpc::ServerWriter<pb::MetricsBatch>* writer) {
  return answer("WatchMetrics", [&] {
    check_token(context);
    const std::string job = request->job_id().empty() ? registry_.latest_job() : request->job_id();
    check_job(job);
    // What one watcher may hold and send: the newest kWatchRecords records at a time (one that
    // falls further behind skips older ones: it wants the live view), sent in messages of
    // kWatchMessageRecords records, each evaluation in a message of its own, all well inside the
    // 4 MiB message limit whatever batches workers report.
    constexpr size_t kWatchRecords = 10000, kWatchMessageRecords = 1000;
    MetricsStore::Cursor cursor = metrics_.end(job);
    uint64_t skipped = 0;
    while (!context->IsCancelled() && !stopping_) {
      pb::MetricsBatch batch;
      if (!metrics_.wait(job, cursor, &batch, 0.25, kWatchRecords, &skipped)) continue;
      bool open = true;
      for (int at = 0; open && at < batch.record_size();
           at += static_cast<int>(kWatchMessageRecords)) {
        pb::MetricsBatch part;
        part.set_job_id(batch.job_id());
        const int end = std::min(batch.record_size(), at + static_cast<int>(kWatchMessageRecords));
        for (int i = at; i < end; ++i) *part.add_record() = std::move(*batch.mutable_record(i));
        open = writer->Write(part);
      }
      for (int i = 0; open && i < batch.evaluation_size(); ++i) {
        pb::MetricsBatch part;
        part.set_job_id(batch.job_id());
        *part.add_evaluation() = std::move(*batch.mutable_evaluation(i));
        open = writer->Write(part);
      }
      if (!open) break;
    }
  });
}

std::vector<pb::CheckpointInfo> CoordinatorService::list_checkpoints(const std::string& job) {
  check_job(job);
  return checkpoints(job).list();
}

grpc::Status CoordinatorService::ListCheckpoints(grpc::ServerContext* context,
                                                 const pb::ListCheckpointsRequest* request,
                                                 pb::CheckpointList* list) {
  return answer("ListCheckpoints", [&] {
    check_token(context);
    check_job(request->job_id());
    for (const pb::CheckpointInfo& c : list_checkpoints(request->job_id())) {
      *list->add_checkpoint() = c;
    }
  });
}

grpc::Status CoordinatorService::DownloadCheckpoint(
    grpc::ServerContext* context, const pb::DownloadRequest* request,
    grpc::ServerWriter<pb::CheckpointChunk>* writer) {
  return answer("DownloadCheckpoint", [&] {
    check_token(context);
    const std::unique_ptr<OpenCheckpoint> file =
        open_checkpoint(request->job_id(), request->name());
    pb::CheckpointChunk chunk;
    *chunk.mutable_header() = file->info;
    std::string buffer(kChunkBytes, '\0');
    uint64_t at = 0;
    do {  // the header goes out even with no data
      const size_t n = file->read(at, buffer.data(), buffer.size());
      at += n;
      chunk.set_data(buffer.data(), n);
      if (!writer->Write(chunk)) throw Error::unavailable("download abandoned");
      chunk.clear_header();
      if (n == 0) break;
    } while (at < file->info.size());
  });
}

namespace {

// The SHA-256 of everything the descriptor reads from offset 0.
std::string sha256_of(int fd) {
  Sha256 hash;
  std::string buffer(kChunkBytes, '\0');
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), at);
    if (n <= 0) break;
    hash.update({buffer.data(), static_cast<size_t>(n)});
    at += n;
  }
  return hash.hex();
}

}  // namespace

OpenCheckpoint::OpenCheckpoint(const std::string& path)
    : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}

OpenCheckpoint::~OpenCheckpoint() {
  if (fd_ >= 0) ::close(fd_);
}

size_t OpenCheckpoint::read(uint64_t offset, char* out, size_t bytes) const {
  const ssize_t n = ::pread(fd_, out, bytes, static_cast<off_t>(offset));
  if (n < 0) throw Error::io(fmt::format("cannot read '{}'", path_));
  return static_cast<size_t>(n);
}

std::unique_ptr<OpenCheckpoint> CoordinatorService::open_checkpoint(const std::string& job,
                                                                    const std::string& name) {
  check_job(job);
  if (name != "latest" && !valid_checkpoint_name(name)) {
    throw Error::invalid_input(
        "checkpoint name is not allowed (letters, digits, '.', '_', '-'; "
        "at most 100; or 'latest')");
  }
  CheckpointStore& store = checkpoints(job);
  // Verified as it is served: a file damaged since the store opened is marked corrupt and, for
  // "latest", the newest one still intact is served instead. Opened once: retention may delete
  // the file meanwhile, the open descriptor still reads it.
  for (;;) {
    pb::CheckpointInfo info = store.find(name);
    auto file = std::make_unique<OpenCheckpoint>(store.path(info.name()));
    if (file->fd_ < 0) throw Error::not_found("checkpoint file vanished");
    if (sha256_of(file->fd_) != info.sha256()) {
      fmt::print(stderr,
                 "convoy coordinator: job {}: checkpoint '{}' changed on disk; listed as "
                 "corrupt, not served\n",
                 job, info.name());
      store.mark_corrupt(info.name());
      continue;  // find() now refuses it, or finds the next newest
    }
    file->info = std::move(info);
    file->info.set_job_id(job);
    return file;
  }
}

CoordinatorServer::CoordinatorServer(const CoordinatorOptions& options, const std::string& listen,
                                     const Clock& clock)
    : service_(options, clock) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {read_file(options.tls_key_file), read_file(options.tls_cert_file)});
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, credentials, &port_);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  if (!options.auth_token.empty()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<TokenInterceptorFactory>(options.auth_token));
    builder.experimental().SetInterceptorCreators(std::move(factories));
  }
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    throw Error::invalid_input(fmt::format("cannot listen on '{}'", listen));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  syncer_ = std::thread([this] {
    for (int tick = 1; running_; ++tick) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      service_.expire_idle_uploads();
      if (tick % 10 == 0) {  // about once a second
        service_.sync();
        // glibc keeps memory freed by the server's many threads in per-thread arenas; hand it
        // back, so that what a burst of watchers or large batches took does not stay resident.
        malloc_trim(0);
      }
    }
  });
}

std::shared_ptr<grpc::Channel> CoordinatorServer::in_process_channel() {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  arguments.SetMaxSendMessageSize(kMaxMessageBytes);
  return server_->InProcessChannel(arguments);
}

CoordinatorServer::~CoordinatorServer() {
  shutdown();
}

void CoordinatorServer::shutdown() {
  if (!running_.exchange(false) || !server_) return;
  service_.stop();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  syncer_.join();
  service_.sync();
}

}  // namespace convoy
