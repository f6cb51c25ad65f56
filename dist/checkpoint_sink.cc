#include "checkpoint_sink.h"

#include <fmt/format.h>

namespace convoy {

LocalCheckpointSink::LocalCheckpointSink(const std::string& dir, CheckpointStore::Options options,
                                         std::function<void(const std::string&)> warn)
    : store_(dir, options), warn_(std::move(warn)) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stop_ || pending_.has_value(); });
      if (!pending_) return;  // stopping, nothing left to write
      auto [header, bytes] = std::move(*pending_);
      pending_.reset();
      writing_ = true;
      lock.unlock();
      try {
        store_.put(header, bytes);
      } catch (const CheckpointStoreError& e) {
        warn_(fmt::format("checkpoint at step {} not written to '{}': {}", header.step(),
                          store_.dir(), e.what()));
      }
      lock.lock();
      writing_ = false;
      changed_.notify_all();
    }
  });
}

LocalCheckpointSink::~LocalCheckpointSink() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();  // writes what is pending first
}

void LocalCheckpointSink::submit(pb::CheckpointHeader header, std::string bytes) {
  {
    std::lock_guard lock(mutex_);
    pending_.emplace(std::move(header), std::move(bytes));
  }
  changed_.notify_all();
}

bool LocalCheckpointSink::flush(double seconds) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                           [&] { return !pending_ && !writing_; });
}

}  // namespace convoy
