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
// Durability: given a log path, registrations and restart counts are also appended to a RecordLog
// (dist/record_log.h) that the constructor replays, so that they survive a coordinator restart:
// ranks come back as registered at the moment of the restart (alive until they miss heartbeats
// for gone_after seconds) and their next heartbeat is accepted without registering again. The
// constructor compacts the log to one record per rank and one per job with restarts, and so do
// appends once they outgrow the compacted log. A log that cannot be read, appended to or
// compacted is reported on stderr and the registrations are still taken (in memory):
// registering, and the coordinator's start, never fail because of its disk.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/file_system.h"
#include "dist/clock.h"
#include "dist/record_log.h"
#include "proto/coordinator.pb.h"

namespace convoy {

// "alive", "stalled" or "gone": how dashboards and metrics name a rank's state.
const char* rank_state_name(pb::RankStatus::State state);

class JobRegistry {
 public:
  // `log_path` empty: memory only. Throws Error (I/O) when the log cannot be read or compacted.
  JobRegistry(const Clock& clock, double stall_after, double gone_after,
              const std::string& log_path = "", FileSystem& file_system = FileSystem::local());

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
  // Makes the log's appends durable (the coordinator calls it about once a second).
  void sync();
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
  static void check(const pb::RegisterRequest& request);
  static void check(const pb::RestartRecord& record);
  void register_locked(const pb::RegisterRequest& request);
  void restart_locked(const pb::RestartRecord& record, int32_t restarts);
  // The log's part, under log_mutex_ (taken before mutex_ when both are).
  void persist_log_locked(const pb::RegistryEvent& event);
  void compact_log_locked();
  // Every rank's registration and every job's restarts, as log records.
  std::vector<std::string> snapshot() const;
  static void warn(const std::string& message);

  const Clock& clock_;
  const double stall_after_, gone_after_;
  mutable std::mutex mutex_;
  std::map<std::string, Job> jobs_;
  std::string latest_job_;
  // Durability (see the top): the log, its own lock, and how much it holds beyond the last
  // compaction. File I/O happens under log_mutex_ only, never under mutex_, so that a slow disk
  // does not hold up heartbeats.
  static constexpr uint64_t kCompactAfterBytes = 1 << 20;
  const std::string log_path_;
  FileSystem& file_system_;
  std::mutex log_mutex_;
  std::unique_ptr<RecordLog> log_;  // null: memory only
  uint64_t compacted_bytes_ = 0, appended_bytes_ = 0;
};

}  // namespace convoy
