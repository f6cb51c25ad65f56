#include "coordinator_client.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "error.h"
#include "sha256.h"

namespace convoy {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string read_flag_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read '{}'", flag, path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t first = 0;
  while (first < s.size() && std::isspace(static_cast<unsigned char>(s[first]))) ++first;
  return s.substr(first);
}

}  // namespace

CoordinatorAddress coordinator_address(const std::string& target, const std::string& token_file,
                                       const std::string& tls_ca_file) {
  CoordinatorAddress address{target, {}, {}};
  if (!token_file.empty()) {
    address.token = trim(read_flag_file(token_file, "--auth-token-file"));
    if (address.token.empty()) {
      throw InputError(fmt::format("--auth-token-file: '{}' is empty", token_file));
    }
  }
  if (!tls_ca_file.empty()) address.tls_ca_pem = read_flag_file(tls_ca_file, "--tls-ca");
  return address;
}

CoordinatorError::CoordinatorError(const grpc::Status& status, const std::string& what)
    : std::runtime_error(fmt::format("{}: {}", what, status.error_message())),
      code_(status.error_code()) {}

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

void CoordinatorClient::prepare(grpc::ClientContext& context, double timeout_seconds) const {
  if (!address_.token.empty()) context.AddMetadata("authorization", "Bearer " + address_.token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
}

pb::CheckpointInfo CoordinatorClient::upload(pb::CheckpointHeader header, std::string_view bytes,
                                             double timeout_seconds) {
  grpc::ClientContext context;
  prepare(context, timeout_seconds);
  return upload(context, std::move(header), bytes);
}

pb::CheckpointInfo CoordinatorClient::upload(grpc::ClientContext& context,
                                             pb::CheckpointHeader header, std::string_view bytes) {
  header.set_size(bytes.size());
  header.set_sha256(sha256_hex(bytes));
  pb::CheckpointInfo info;
  std::unique_ptr<grpc::ClientWriter<pb::CheckpointChunk>> writer =
      stub_->UploadCheckpoint(&context, &info);
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
  const grpc::Status status = writer->Finish();
  if (!status.ok()) throw CoordinatorError(status, "checkpoint upload");
  return info;
}

std::string CoordinatorClient::download(const std::string& job, const std::string& name,
                                        pb::CheckpointHeader* header, double timeout_seconds) {
  grpc::ClientContext context;
  prepare(context, timeout_seconds);
  pb::DownloadRequest request;
  request.set_job_id(job);
  request.set_name(name);
  std::unique_ptr<grpc::ClientReader<pb::CheckpointChunk>> reader =
      stub_->DownloadCheckpoint(&context, request);
  pb::CheckpointChunk chunk;
  std::string bytes;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      *header = chunk.header();
      bytes.reserve(header->size());
    }
    bytes += chunk.data();
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) throw CoordinatorError(status, "checkpoint download");
  if (bytes.size() != header->size() || sha256_hex(bytes) != header->sha256()) {
    throw CoordinatorError(grpc::Status(grpc::StatusCode::DATA_LOSS, "size or sha256 mismatch"),
                           "checkpoint download");
  }
  return bytes;
}

}  // namespace convoy
