// MetricsStore: every job's step and evaluation records, on disk under <dir>/<job>/ (RecordLog
// files steps.log and evaluations.log) and, for the newest `memory_records` step records per job,
// in memory. Memory stays bounded however long a job runs; queries reaching further back read the
// file. Watchers block until records newer than their cursor arrive. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dist/record_log.h"
#include "dist/step_series.h"
#include "proto/coordinator.pb.h"

namespace convoy {

class MetricsStore {
 public:
  // A page stays well inside the 4 MiB message limit.
  static constexpr size_t kMaxPageBytes = 3 << 20;
  // Per-class lists in one evaluation (precision, recall) hold at most this many values.
  static constexpr int kMaxClasses = 10000;

  // Loads every job already stored under `dir` (creating `dir` if needed). A job stores at most
  // `max_job_records` step and evaluation records together.
  MetricsStore(std::string dir, size_t memory_records,
               FileSystem& file_system = FileSystem::local(),
               uint64_t max_job_records = UINT64_MAX);

  // Both throw Error (limit exceeded) when the job would store more than max_job_records, and
  // Error (I/O) when the disk fails; then none of the records is stored.
  void append(const std::string& job, const std::vector<pb::StepRecord>& records);
  // Throws Error (invalid input) for an evaluation with more than kMaxClasses values per list, or
  // a confusion matrix that is neither empty nor classes x classes.
  void append(const std::string& job, const pb::EvaluationRecord& evaluation);

  // Step records with from_step <= step <= to_step (0: no bound) in arrival order, at most
  // `limit`, and the evaluations in the range; at most kMaxPageBytes in all: when more matched,
  // the page holds every record and evaluation of the steps before some step S and is marked
  // truncated (ask again from the last record's step).
  pb::MetricsPage query(const pb::MetricsQuery& query, int32_t max_limit) const;

  // Where a watcher stands: how many step and evaluation records of the job it has seen.
  struct Cursor {
    uint64_t steps = 0;
    uint64_t evaluations = 0;
  };
  // A cursor at the end of the job's records (a new watcher sees only what comes next).
  Cursor end(const std::string& job) const;
  // Waits up to `timeout_seconds` for records after `cursor`; fills `out` with them -- the newest
  // `max_records` step records at most (a watcher that fell further behind skips the older ones,
  // counted in `*skipped`) -- and advances `cursor`. False on timeout.
  bool wait(const std::string& job, Cursor& cursor, pb::MetricsBatch* out, double timeout_seconds,
            size_t max_records, uint64_t* skipped) const;

  uint64_t step_records(const std::string& job) const;
  // For charts: the job's step records reduced to at most StepSeries::kMaxPoints points, and every
  // evaluation. Empty for an unknown job.
  std::vector<StepSeries::Point> series(const std::string& job) const;
  struct EvaluationPoint {
    int64_t step = 0, epoch = 0;
    double test_accuracy = 0, test_loss = 0;
  };
  std::vector<EvaluationPoint> evaluation_points(const std::string& job) const;
  bool latest_evaluation(const std::string& job, pb::EvaluationRecord* out) const;
  // Makes every append so far durable.
  void sync();

 private:
  struct Job {
    std::unique_ptr<RecordLog> steps, evaluations;
    std::deque<pb::StepRecord> recent;                  // the last records, at most memory_records
    uint64_t step_count = 0;                            // records ever stored
    StepSeries series;                                  // every record, for charts
    std::vector<pb::EvaluationRecord> evaluation_list;  // few: one per epoch
    std::string steps_path;
  };
  Job& job_locked(const std::string& job);
  // Throws Error (limit exceeded) when `more` records would take `job` past max_job_records_.
  void check_limit_locked(const std::string& name, const Job& job, uint64_t more) const;
  static pb::MetricsPage fit_to_size(pb::MetricsPage page);

  std::string dir_;
  size_t memory_records_;
  FileSystem& file_system_;
  uint64_t max_job_records_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
};

// Job ids name directories: 1 to 64 characters from [A-Za-z0-9._-], not starting with '.'.
bool valid_job_id(const std::string& job);

}  // namespace convoy
