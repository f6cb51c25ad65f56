// Timeline: what one process did during the last K training steps, as Chrome trace events
// (`convoy train --trace FILE`; open the file in Perfetto or chrome://tracing). Horovod's Timeline
// is the model: spans on named lanes, here one per thread --
//   train          each layer's forward and backward, the loss, the wait for the batch loader,
//                  the gradient all-reduce finish (and the last bucket, reduced on this thread),
//                  the optimizer update
//   communication  each gradient bucket's all-reduce, overlapped with backward
// Memory is bounded: the spans of the newest `keep_steps` steps, at most kMaxSpansPerStep each.
// Off costs one pointer test per span: whoever records takes a `Timeline*` that is null then.
// Thread-safe (the communication thread records into the step the training thread is in).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace convoy {

// Where rank `rank` of `size` writes the timeline asked for as `path`: the path itself for one
// process, else with ".rank<R>" before a ".json" ending (or at the end).
std::string timeline_path(const std::string& path, int rank, int size);

class Timeline {
 public:
  using Clock = std::chrono::steady_clock;
  enum Lane : int { kTrain = 1, kCommunication = 2 };
  static constexpr size_t kMaxSpansPerStep = 4096;

  // `process`: the trace's process id and name (the rank).
  Timeline(int64_t keep_steps, int process);

  // Spans recorded from now on belong to `step`; steps older than the newest keep_steps go.
  void begin_step(int64_t step);
  void span(Lane lane, std::string name, const char* category, Clock::time_point start,
            Clock::time_point end);

  // The Chrome trace JSON ({"traceEvents": [...]}): complete events ("ph": "X") with microsecond
  // timestamps on the wall clock (so that files of several ranks line up when merged), the step
  // in each event's args, and lane and process names.
  std::string json() const;

  // Records a span from construction to destruction; nothing when the timeline is null.
  class Scope {
   public:
    // `name` is copied only when recording: off, a scope allocates nothing.
    Scope(Timeline* timeline, Lane lane, std::string_view name, const char* category)
        : timeline_(timeline) {
      if (timeline_ == nullptr) return;
      lane_ = lane;
      name_ = name;
      category_ = category;
      start_ = Clock::now();
    }
    ~Scope() {
      if (timeline_ != nullptr)
        timeline_->span(lane_, std::move(name_), category_, start_, Clock::now());
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Timeline* timeline_;
    Lane lane_ = kTrain;
    std::string name_;
    const char* category_ = "";
    Clock::time_point start_;
  };

 private:
  struct Span {
    Lane lane;
    std::string name;
    const char* category;
    Clock::time_point start, end;
  };
  struct Step {
    int64_t step;
    std::vector<Span> spans;
  };
  const int64_t keep_steps_;
  const int process_;
  // One instant on both clocks, to print steady times as wall-clock microseconds.
  const Clock::time_point steady_origin_;
  const double wall_origin_us_;
  mutable std::mutex mutex_;
  std::deque<Step> steps_;
};

}  // namespace convoy
