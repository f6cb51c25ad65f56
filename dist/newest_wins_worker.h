// NewestWinsWorker<T>: hands values to a thread of its own that processes them one at a time, and
// keeps at most one waiting: a newer value replaces one not yet started (newest wins). Checkpoints
// travel this way -- to a local directory (LocalCheckpointSink) and to the coordinator
// (CoordinatorReporter) -- so that the training thread never waits for a disk or a network, and a
// slow one only ever holds the newest checkpoint.
//
// `process` runs on the worker thread. It returns nothing when the value is done with (stored, or
// given up on), or a number of seconds after which to try the same value again (unless a newer one
// has arrived meanwhile). A retry wait is cut short by the destructor and shortened to 0.25 s while
// someone waits in flush().
//
// Thread-safe. The destructor stops the worker: with `drain`, a pending value is still processed
// once first; without, it is dropped (the owner cancels a value in progress, if it must).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace convoy {

template <typename T>
class NewestWinsWorker {
 public:
  using Process = std::function<std::optional<double>(T&)>;

  NewestWinsWorker(Process process, bool drain)
      : process_(std::move(process)), drain_(drain), thread_([this] { loop(); }) {}
  ~NewestWinsWorker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  NewestWinsWorker(const NewestWinsWorker&) = delete;
  NewestWinsWorker& operator=(const NewestWinsWorker&) = delete;

  void submit(T value) {
    {
      std::lock_guard lock(mutex_);
      pending_.emplace(std::move(value));
    }
    changed_.notify_all();
  }

  // Waits up to `seconds` until nothing is pending or in progress; false if something still is.
  bool flush(double seconds) {
    std::unique_lock lock(mutex_);
    ++flushing_;
    changed_.notify_all();
    const bool done = changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                                        [&] { return !pending_ && !busy_; });
    --flushing_;
    return done;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stop_ || pending_.has_value(); });
      if (!pending_ || (stop_ && !drain_)) return;
      T value = std::move(*pending_);
      pending_.reset();
      busy_ = true;
      lock.unlock();
      const std::optional<double> retry = process_(value);
      lock.lock();
      busy_ = false;
      if (retry && !stop_) {
        if (!pending_) pending_.emplace(std::move(value));  // unless a newer one arrived
        busy_ = true;  // still owed: flush() keeps waiting through the pause
        if (flushing_ > 0) {
          // Someone waits in flush(): retry soon, but do not spin on a target that is down.
          changed_.wait_for(lock, std::chrono::duration<double>(std::min(*retry, 0.25)),
                            [&] { return stop_; });
        } else {  // a flush() starting meanwhile cuts the wait short
          changed_.wait_for(lock, std::chrono::duration<double>(*retry),
                            [&] { return stop_ || flushing_ > 0; });
        }
        busy_ = false;
      }
      changed_.notify_all();
    }
  }

  Process process_;
  const bool drain_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<T> pending_;
  bool busy_ = false, stop_ = false;
  int flushing_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace convoy
