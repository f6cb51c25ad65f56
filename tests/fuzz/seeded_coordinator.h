// A coordinator for the fuzz targets: a CoordinatorServer with a token and a fresh state directory,
// already holding one job ("seeded": two ranks registered, 20 step records, a checkpoint), and a
// stub on its in-process channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "dist/clock.h"
#include "dist/coordinator_service.h"
#include "proto/coordinator.grpc.pb.h"

namespace convoy::fuzz {

inline constexpr const char* kToken = "fuzz-token";

struct SeededCoordinator {
  // `name` names its state directory in the scratch directory.
  explicit SeededCoordinator(const std::string& name);
  ~SeededCoordinator();

  // Credentials: 0 the right token, 1 none, 2 a wrong one; and a deadline.
  void prepare(grpc::ClientContext& context, int credentials, double seconds) const;

  const std::string dir;
  FakeClock clock;  // time stands still: an input's effect does not depend on when it ran
  std::unique_ptr<CoordinatorServer> server;
  std::unique_ptr<pb::Coordinator::Stub> stub;
};

}  // namespace convoy::fuzz
