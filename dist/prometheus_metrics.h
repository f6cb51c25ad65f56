// The coordinator's /metrics: what it knows of every job, in Prometheus' text exposition format
// (version 0.0.4). Names follow Prometheus' naming guide: one `convoy_` prefix, base units
// (`_seconds`, `_bytes`), `_total` for counters. Labels are `job_id` (not `job`, which Prometheus
// sets on every series it scrapes), `rank` and `host`, so that series stay bounded by the jobs and
// ranks; the call counters add `method` and `code`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "proto/coordinator.pb.h"

namespace convoy {

struct CoordinatorSnapshot {
  struct Job {
    pb::JobStatus status;  // as GetJobStatus answers it
    int64_t checkpoints = 0;
    uint64_t checkpoint_bytes = 0;
  };
  std::vector<Job> jobs;
  std::map<std::pair<std::string, int>, uint64_t> calls;  // (method, gRPC code) -> answered
};

// The exposition text; `now` (seconds since the Unix epoch) dates the heartbeats.
std::string prometheus_metrics(const CoordinatorSnapshot& snapshot, double now);

}  // namespace convoy
