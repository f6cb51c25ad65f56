// JobRegistry: which training jobs and ranks the coordinator knows, and whether each rank is
// alive, stalled or gone. Thread-safe; time comes from an injected Clock.
//
//   gone     no heartbeat (or registration) for more than `gone_after` seconds
//   stalled  heartbeats arrive, but its step has not advanced for more than `stall_after`
//            seconds while another rank's step has advanced within that time
//   alive    otherwise
// A registration starts a rank afresh (a new process: its step and progress clock restart), so a
// job restarted from a checkpoint is not taken for stalled. Launchers report restarts; the count
// and the latest are part of the status.
// Registrations live in memory only: after a coordinator restart, workers register again (their
// reporters do so on reconnecting).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "dist/clock.h"
#include "proto/coordinator.pb.h"

namespace convoy {

// "alive", "stalled" or "gone": how dashboards and metrics name a rank's state.
const char* rank_state_name(pb::RankStatus::State state);

class JobRegistry {
 public:
  JobRegistry(const Clock& clock, double stall_after, double gone_after)
      : clock_(clock), stall_after_(stall_after), gone_after_(gone_after) {}

  // Limits on what one job may register, so that memory and status calls stay small.
  static constexpr int32_t kMaxWorldSize = 4096;
  static constexpr size_t kMaxHostBytes = 255;
  static constexpr size_t kMaxCommandLineBytes = 64 << 10;

  // Throws Error (invalid input) for a world size outside [1, kMaxWorldSize], a rank outside
  // [0, world size), a host name longer than kMaxHostBytes or a command line longer than
  // kMaxCommandLineBytes. A registration with a smaller world
  // size than before forgets the ranks at or above it (the job was restarted smaller).
  void register_rank(const pb::RegisterRequest& request);
  // False when the rank never registered (the caller should ask it to).
  bool heartbeat(const pb::HeartbeatRequest& request);
  // Remembers the latest step record of a rank (also counts as progress).
  void observe(const std::string& job, const pb::StepRecord& record);
  // Counts a restart of `record.job_id()` (known or not yet registered). Throws Error (invalid
  // input) for a host longer than kMaxHostBytes or a cause longer than kMaxCauseBytes.
  static constexpr size_t kMaxCauseBytes = 1024;
  void record_restart(const pb::RestartRecord& record);

  // The status of `job` (ranks, states, throughput); `job` empty: the most recently registered.
  // Fills job_id, world_size, rank, images_per_second, restarts and command_line; false when the
  // job is unknown. Linear in the job's ranks.
  bool status(const std::string& job, pb::JobStatus* out) const;
  std::vector<std::string> jobs() const;
  std::string latest_job() const;

 private:
  struct Rank {
    pb::RegisterRequest registration;
    double registered = 0;
    double last_heartbeat = 0;
    double last_progress = 0;
    int64_t step = -1;
    uint64_t records_dropped = 0;
    pb::StepRecord latest;
  };
  struct Job {
    int32_t world_size = 0;
    std::map<int, Rank> ranks;
    int32_t restarts = 0;
    pb::RestartRecord last_restart;
  };
  void advance(Rank& r, int64_t step, double now);

  const Clock& clock_;
  const double stall_after_, gone_after_;
  mutable std::mutex mutex_;
  std::map<std::string, Job> jobs_;
  std::string latest_job_;
};

}  // namespace convoy
