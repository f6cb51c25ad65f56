// CheckpointSource: where `--resume` reads a job's latest checkpoint from -- the coordinator or a
// local checkpoint directory -- the way back for what a CheckpointSink stored.
#pragma once

#include <optional>
#include <string>

#include "dist/coordinator_client.h"

namespace convoy {

struct FetchedCheckpoint {
  std::string bytes;   // the checkpoint file's bytes, verified against the store's SHA-256
  std::string origin;  // for messages: "coordinator HOST:PORT checkpoint 'step-000000500'"
};

class CheckpointSource {
 public:
  virtual ~CheckpointSource() = default;
  // The newest valid checkpoint, or nothing when none is stored yet. Throws Error otherwise
  // (unreachable coordinator, unreadable directory, a transfer that fails its checks).
  virtual std::optional<FetchedCheckpoint> latest() = 0;
};

class CoordinatorCheckpointSource final : public CheckpointSource {
 public:
  CoordinatorCheckpointSource(const CoordinatorAddress& address, std::string job_id);
  std::optional<FetchedCheckpoint> latest() override;

 private:
  CoordinatorClient client_;
  std::string job_id_;
};

class DirectoryCheckpointSource final : public CheckpointSource {
 public:
  explicit DirectoryCheckpointSource(std::string dir) : dir_(std::move(dir)) {}
  std::optional<FetchedCheckpoint> latest() override;

 private:
  std::string dir_;
};

}  // namespace convoy
