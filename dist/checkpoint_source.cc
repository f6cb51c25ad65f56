#include "dist/checkpoint_source.h"

#include <fmt/format.h>

#include "core/read_file.h"
#include "dist/checkpoint_store.h"

namespace convoy {

CoordinatorCheckpointSource::CoordinatorCheckpointSource(const CoordinatorAddress& address,
                                                         std::string job_id)
    : client_(address), job_id_(std::move(job_id)) {}

std::optional<FetchedCheckpoint> CoordinatorCheckpointSource::latest() {
  pb::CheckpointInfo header;
  try {
    std::string bytes = client_.download(job_id_, "latest", &header);
    return FetchedCheckpoint{
        std::move(bytes),
        fmt::format("coordinator {} checkpoint '{}'", client_.address().target, header.name())};
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) return std::nullopt;
    throw;
  }
}

std::optional<FetchedCheckpoint> DirectoryCheckpointSource::latest() {
  const CheckpointStore store(dir_, {});
  pb::CheckpointInfo info;
  try {
    info = store.find("latest");
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) return std::nullopt;
    throw;
  }
  const std::string path = store.path(info.name());
  return FetchedCheckpoint{read_file(path), path};
}

}  // namespace convoy
