#include "seeded_coordinator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dist/sha256.h"
#include "fuzz_support.h"

namespace convoy::fuzz {

namespace {

void check(const grpc::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "seeding the coordinator failed: %s\n", status.error_message().c_str());
    std::abort();
  }
}

}  // namespace

SeededCoordinator::SeededCoordinator(const std::string& name) : dir(scratch_path(name)) {
  std::filesystem::remove_all(dir);
  CoordinatorOptions options;
  options.state_dir = dir;
  options.auth_token = kToken;
  options.upload_idle_seconds = 0.5;
  server = std::make_unique<CoordinatorServer>(options, "127.0.0.1:0", clock);
  stub = pb::Coordinator::NewStub(server->in_process_channel());
  for (int rank = 0; rank < 2; ++rank) {
    grpc::ClientContext context;
    prepare(context, 0, 5);
    pb::RegisterRequest request;
    request.set_job_id("seeded");
    request.set_rank(rank);
    request.set_world_size(2);
    request.set_host("localhost");
    request.add_command_line("convoy");
    pb::RegisterResponse response;
    check(stub->Register(&context, request, &response));
  }
  {
    grpc::ClientContext context;
    prepare(context, 0, 5);
    pb::MetricsBatch batch;
    batch.set_job_id("seeded");
    for (int step = 1; step <= 20; ++step) {
      pb::StepRecord* r = batch.add_record();
      r->set_step(step);
      r->set_loss(2.0 / step);
      r->set_accuracy(0.05 * step);
    }
    pb::ReportMetricsResponse response;
    check(stub->ReportMetrics(&context, batch, &response));
  }
  const std::string bytes = tiny_checkpoint_bytes();
  grpc::ClientContext context;
  prepare(context, 0, 5);
  pb::CheckpointInfo info;
  auto writer = stub->UploadCheckpoint(&context, &info);
  pb::CheckpointChunk chunk;
  chunk.mutable_header()->set_job_id("seeded");
  chunk.mutable_header()->set_size(bytes.size());
  chunk.mutable_header()->set_sha256(sha256_hex(bytes));
  chunk.mutable_header()->set_step(20);
  chunk.set_data(bytes);
  writer->Write(chunk);
  writer->WritesDone();
  check(writer->Finish());
}

SeededCoordinator::~SeededCoordinator() {
  stub.reset();
  server.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

void SeededCoordinator::prepare(grpc::ClientContext& context, int credentials,
                                double seconds) const {
  if (credentials == 0) context.AddMetadata("authorization", std::string("Bearer ") + kToken);
  if (credentials == 2) context.AddMetadata("authorization", "Bearer fuzz-tokem");
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
}

}  // namespace convoy::fuzz
