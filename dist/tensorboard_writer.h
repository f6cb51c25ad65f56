// TensorBoardWriter: the coordinator's `--tensorboard-dir DIR`: TensorBoard event files, one run
// (a directory DIR/<job>) per job, so `tensorboard --logdir DIR` shows every job side by side.
//
// Scalars (Summary.Value.simple_value) by step:
//   train/loss, train/accuracy      rank 0's records (its global batch)
//   train/learning_rate
//   train/images_per_second         the job's: the world size times rank 0's
//   test/loss, test/accuracy        each evaluation
//   test/precision/<class>, test/recall/<class>
// Each coordinator start opens a new file per job (events.out.tfevents.<time>.<host>.<pid>);
// TensorBoard reads a run's files in order. Whenever rank 0 registers (a job starts, or starts
// again after a failure), the next record's step gets a SessionLog START: TensorBoard then drops
// what the earlier attempt wrote at that step and after, so a resumed job draws no zig-zag.
//
// The file format is TFRecord: per event, the little-endian uint64 length, the masked CRC-32C of
// those 8 bytes, the serialized Event, the masked CRC-32C of it; masked(c) = ((c >> 15) |
// (c << 17)) + 0xa282ead8. The first event of a file is file_version "brain.Event:2".
//
// Writing never fails a call: an I/O error is reported once (to `warn`) and that job's events stop
// until the coordinator restarts. Thread-safe. Files are flushed by sync() (about once a second),
// which also closes those idle for a minute (reopened to append when their job reports again), so
// descriptors do not grow with the jobs ever seen.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "proto/coordinator.pb.h"
#include "proto/tensorboard.pb.h"

namespace convoy {

class TensorBoardWriter {
 public:
  TensorBoardWriter(std::string dir, std::function<void(const std::string&)> warn);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void registered(const pb::RegisterRequest& request);
  void steps(const std::string& job, const std::vector<pb::StepRecord>& records);
  void evaluation(const std::string& job, const pb::EvaluationRecord& evaluation);
  void sync();

  // One TFRecord: the framing around `data`.
  static std::string record(const std::string& data);

 private:
  struct Run {
    std::FILE* file = nullptr;
    std::string path;
    bool failed = false;
    bool start_pending = false;  // rank 0 registered: mark the next step as a new start
    int32_t world_size = 1;
    double last_write = 0;  // wall seconds
  };
  Run* run_locked(const std::string& job);
  void write_locked(const std::string& job, Run& run, const tensorboard::Event& event);

  std::string dir_;
  std::function<void(const std::string&)> warn_;
  std::mutex mutex_;
  std::map<std::string, Run> runs_;
};

}  // namespace convoy
