// CoordinatorClient: a connection to the coordinator for workers and for `convoy monitor`:
// credentials (bearer token, TLS), deadlines, and the checkpoint transfers (chunked upload with
// size and SHA-256, download verified against the same).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "coordinator.grpc.pb.h"

namespace convoy {

struct CoordinatorAddress {
  std::string target;      // host:port
  std::string token;       // empty: no authorization header
  std::string tls_ca_pem;  // empty: plaintext
};

// Reads the token and CA files named by the flags; throws InputError naming the flag.
CoordinatorAddress coordinator_address(const std::string& target, const std::string& token_file,
                                       const std::string& tls_ca_file);

class CoordinatorError : public std::runtime_error {
 public:
  CoordinatorError(const grpc::Status& status, const std::string& what);
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

class CoordinatorClient {
 public:
  explicit CoordinatorClient(const CoordinatorAddress& address);

  pb::Coordinator::Stub& stub() { return *stub_; }
  const CoordinatorAddress& address() const { return address_; }
  // Adds the token and a deadline `timeout_seconds` from now.
  void prepare(grpc::ClientContext& context, double timeout_seconds) const;

  // Streams `bytes` in 1 MiB chunks; the header's size and sha256 are filled in here. Throws
  // CoordinatorError with the server's status on failure.
  pb::CheckpointInfo upload(pb::CheckpointHeader header, std::string_view bytes,
                            double timeout_seconds = 600);
  // The same on a context the caller prepared (and may cancel from another thread).
  pb::CheckpointInfo upload(grpc::ClientContext& context, pb::CheckpointHeader header,
                            std::string_view bytes);
  // The bytes of a checkpoint ("latest" or a name), checked against the header's size and
  // SHA-256; `header` receives the header. Throws CoordinatorError.
  std::string download(const std::string& job, const std::string& name,
                       pb::CheckpointHeader* header, double timeout_seconds = 600);

 private:
  CoordinatorAddress address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
};

}  // namespace convoy
