// The coordinator's /metrics: what it knows of every job, in Prometheus' text exposition format
// (version 0.0.4). Names follow Prometheus' naming guide: one `convoy_` prefix, base units
// (`_seconds`, `_bytes`), `_total` for counters. Labels are `job_id` (not `job`, which Prometheus
// sets on every series it scrapes), `rank` and `host`, so that series stay bounded by the jobs and
// ranks; the call counters add `method` and `code`.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "proto/coordinator.pb.h"

namespace convoy {

// Durations in a Prometheus histogram: counts per bucket of fixed upper bounds, from a millisecond
// to a minute, plus the sum and the count. Since the coordinator started (counters may reset).
struct SecondsHistogram {
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10,   60};
  std::array<uint64_t, kBounds.size()> counts{};  // per bucket, not cumulative
  uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

struct CoordinatorSnapshot {
  struct Job {
    pb::JobStatus status;  // as GetJobStatus answers it
    int64_t checkpoints = 0;
    uint64_t checkpoint_bytes = 0;
    // Every rank's step records since the coordinator started.
    SecondsHistogram step_seconds, allreduce_seconds;
  };
  std::vector<Job> jobs;
  std::map<std::pair<std::string, int>, uint64_t> calls;  // (method, gRPC code) -> answered
};

// The exposition text; `now` (seconds since the Unix epoch) dates the heartbeats.
std::string prometheus_metrics(const CoordinatorSnapshot& snapshot, double now);

}  // namespace convoy
