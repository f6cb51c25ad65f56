// The coordinator's RPC handlers, each request message, through a real CoordinatorServer (its
// token check, message limits and state directory) over an in-process channel.
//
// An input is a sequence of at most 8 calls, each framed as
//   op (1 byte) | length (2 bytes, little-endian) | payload (length bytes)
// op % 11 picks the method (in proto/coordinator.proto's order) and (op / 11) % 3 the credentials:
// the right token, none, or a wrong one; for uploads, an odd op / 33 has the harness give the
// header the size and SHA-256 of the data sent. The payload is the serialized request; for
// UploadCheckpoint it is itself a sequence of length (2 bytes) | CheckpointChunk frames. A short
// frame ends the input. Every call has a deadline; WatchMetrics' is short, as a watcher that
// waits for records that never come is ended by its deadline.
//
// The server starts with a job already there (seeded_coordinator.h) so that queries and
// downloads have something to read, and its clock stands still, so what an input does does not
// depend on when it ran. Inputs do see what earlier ones stored (starting a server per input would
// cut the search's speed a hundredfold); to bound what a long search accumulates (every new valid
// job name is a directory), a fresh server with a fresh state directory replaces it every
// kInputsPerServer inputs. A finding that needs its predecessors shows as one that does not
// reproduce alone; the run's log lists the inputs before it.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "dist/sha256.h"
#include "seeded_coordinator.h"

namespace {

using convoy::pb::Coordinator;
namespace pb = convoy::pb;

constexpr int kInputsPerServer = 1000;
constexpr int kMaxCalls = 8;

template <typename Request, typename Response, typename Call>
void unary(const convoy::fuzz::SeededCoordinator& s, int credentials, std::string_view payload,
           Call call) {
  Request request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  grpc::ClientContext context;
  s.prepare(context, credentials, 5);
  Response response;
  (s.stub.get()->*call)(&context, request, &response);
}

template <typename Request, typename Response, typename Call>
void server_stream(const convoy::fuzz::SeededCoordinator& s, int credentials,
                   std::string_view payload, double seconds, Call call) {
  Request request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  grpc::ClientContext context;
  s.prepare(context, credentials, seconds);
  auto reader = (s.stub.get()->*call)(&context, request);
  Response response;
  while (reader->Read(&response)) {
  }
  reader->Finish();
}

void upload(const convoy::fuzz::SeededCoordinator& s, int credentials, bool fix_header,
            std::string_view payload) {
  std::vector<pb::CheckpointChunk> chunks;
  while (payload.size() >= 2) {
    const size_t n = static_cast<uint8_t>(payload[0]) | static_cast<uint8_t>(payload[1]) << 8;
    payload.remove_prefix(2);
    if (n > payload.size()) break;
    pb::CheckpointChunk chunk;
    if (chunk.ParseFromArray(payload.data(), static_cast<int>(n))) chunks.push_back(chunk);
    payload.remove_prefix(n);
  }
  if (fix_header && !chunks.empty()) {
    // Mutations never produce a matching SHA-256: give the header the data's size and digest, so
    // that uploads also get stored (names, retention, the manifest).
    std::string data;
    for (const pb::CheckpointChunk& chunk : chunks) data += chunk.data();
    chunks[0].mutable_header()->set_size(data.size());
    chunks[0].mutable_header()->set_sha256(convoy::sha256_hex(data));
  }
  grpc::ClientContext context;
  s.prepare(context, credentials, 5);
  pb::CheckpointInfo info;
  auto writer = s.stub->UploadCheckpoint(&context, &info);
  for (const pb::CheckpointChunk& chunk : chunks) {
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  writer->Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Shut down when the process exits (atexit runs before LeakSanitizer's check, registered
  // earlier): the server's threads are joined, so what they hold is freed, not reported as leaked.
  static int inputs = 0;
  static convoy::fuzz::SeededCoordinator* server = nullptr;
  if (inputs++ % kInputsPerServer == 0) {
    if (server == nullptr) std::atexit([] { delete server; });
    delete server;
    server = new convoy::fuzz::SeededCoordinator("rpc");
  }
  const convoy::fuzz::SeededCoordinator& s = *server;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int call = 0; call < kMaxCalls && rest.size() >= 3; ++call) {
    const auto op = static_cast<uint8_t>(rest[0]);
    const size_t n = static_cast<uint8_t>(rest[1]) | static_cast<uint8_t>(rest[2]) << 8;
    rest.remove_prefix(3);
    const std::string_view payload = rest.substr(0, n);
    rest.remove_prefix(payload.size());
    const int credentials = op / 11 % 3;
    switch (op % 11) {
      case 0:
        unary<pb::RegisterRequest, pb::RegisterResponse>(s, credentials, payload,
                                                         &Coordinator::Stub::Register);
        break;
      case 1:
        unary<pb::HeartbeatRequest, pb::HeartbeatResponse>(s, credentials, payload,
                                                           &Coordinator::Stub::Heartbeat);
        break;
      case 2:
        unary<pb::MetricsBatch, pb::ReportMetricsResponse>(s, credentials, payload,
                                                           &Coordinator::Stub::ReportMetrics);
        break;
      case 3:
        unary<pb::EvaluationRecord, pb::ReportEvaluationResponse>(
            s, credentials, payload, &Coordinator::Stub::ReportEvaluation);
        break;
      case 4:
        upload(s, credentials, /*fix_header=*/op / 33 % 2 == 1, payload);
        break;
      case 5:
        unary<pb::RestartRecord, pb::ReportRestartResponse>(s, credentials, payload,
                                                            &Coordinator::Stub::ReportRestart);
        break;
      case 6:
        unary<pb::JobStatusRequest, pb::JobStatus>(s, credentials, payload,
                                                   &Coordinator::Stub::GetJobStatus);
        break;
      case 7:
        unary<pb::MetricsQuery, pb::MetricsPage>(s, credentials, payload,
                                                 &Coordinator::Stub::QueryMetrics);
        break;
      case 8:
        server_stream<pb::WatchRequest, pb::MetricsBatch>(s, credentials, payload, 0.002,
                                                          &Coordinator::Stub::WatchMetrics);
        break;
      case 9:
        unary<pb::ListCheckpointsRequest, pb::CheckpointList>(s, credentials, payload,
                                                              &Coordinator::Stub::ListCheckpoints);
        break;
      case 10:
        server_stream<pb::DownloadRequest, pb::CheckpointChunk>(
            s, credentials, payload, 5, &Coordinator::Stub::DownloadCheckpoint);
        break;
    }
  }
  return 0;
}
