#include "dist/checkpoint_sink.h"

#include <fmt/format.h>

namespace convoy {

LocalCheckpointSink::LocalCheckpointSink(const std::string& dir, CheckpointStore::Options options,
                                         std::function<void(const std::string&)> warn)
    : store_(dir, options),
      warn_(std::move(warn)),
      writes_(
          [this](Write& write) -> std::optional<double> {
            try {
              store_.put(write.first, write.second);
              last_failed_ = false;
            } catch (const Error& e) {
              last_failed_ = true;
              warn_(fmt::format("checkpoint at step {} not written to '{}': {}", write.first.step(),
                                store_.dir(), e.what()));
            }
            return std::nullopt;  // a local disk that failed once is not retried
          },
          /*drain=*/true) {
  for (const std::string& note : store_.notes()) warn_(note);
}

void LocalCheckpointSink::submit(pb::CheckpointInfo header, std::string bytes) {
  writes_.submit({std::move(header), std::move(bytes)});
}

}  // namespace convoy
