// TrainingSession: one training run of a job, as every rank sees it -- everything around the
// training loop that is not flag parsing or printing.
//
//   construct  builds the model and the optimizer on every rank, broadcasts rank 0's initial
//              parameters and checks that the replicas are bit-identical; builds the gradient
//              reducer for a job of several ranks.
//   resume()   rank 0 reads the latest checkpoint from the CheckpointSource (coordinator or
//              directory), every rank gets its bytes, checks that it belongs to this run (model,
//              batch size, seed, world size) and restores the model, the optimizer, the average
//              of the weights (when the run keeps one) and the position in the data. Without a
//              checkpoint the run starts from the beginning.
//   run()      trains with the Trainer; reports step records and evaluations to the coordinator
//              and hands checkpoints to a CheckpointSink (every `checkpoint_every` steps and
//              after each epoch), both in the background; checks the replicas again, evaluates,
//              delivers what is still queued (generously while the coordinator answers, briefly
//              while it is away), and on rank 0 writes `save_path`.
//
// Collective: every rank constructs the session and calls its methods in the same order. Errors
// are thrown as convoy::Error; those that every rank raises together are job-wide. Messages for
// the user go to `warn` (this rank's trouble: an outage of the coordinator, a checkpoint that could
// not be stored; may be called from background threads) or, on rank 0, to `notice` (news about the
// whole job: where it resumed from).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/dataset.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/trainer.h"
#include "core/weight_average.h"
#include "dist/coordinator_address.h"
#include "dist/gradient_reducer.h"
#include "dist/job.h"
#include "proto/checkpoint.pb.h"

namespace convoy {

struct TrainingSessionOptions {
  std::string job_id;        // the job's name at the coordinator and in checkpoints
  std::string model_source;  // names the model in messages (a built-in name or a file)
  Precision precision = Precision::kFloat32;
  int64_t batch_size = 64;  // per rank
  double bucket_mb = 25.0;  // gradient all-reduce bucket size, MiB
  OptimizerConfig optimizer;
  TrainOptions train;   // epochs, steps, seed, schedule, augmentation
  std::string dataset;  // the data set's name, kept in checkpoints
  // Reporting and checkpoints: to a coordinator, or else to a local directory, or nowhere.
  std::optional<CoordinatorAddress> coordinator;
  std::string checkpoint_dir;
  size_t keep_checkpoints = 3;   // with checkpoint_dir
  int64_t checkpoint_every = 0;  // steps; 0: after each epoch only
  std::string save_path;         // rank 0 writes the final checkpoint here; empty: nowhere
  // Each rank writes a timeline of the last trace_steps steps to timeline_path(trace_path, ...)
  // when training ends; empty: no timeline.
  std::string trace_path;
  int64_t trace_steps = 20;
};

class TrainingSession {
 public:
  using Say = std::function<void(const std::string&)>;

  TrainingSession(Job& job, const pb::ModelSpec& spec, TrainingSessionOptions options, Say warn,
                  Say notice);
  ~TrainingSession();
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;

  // Continues from the latest stored checkpoint, if there is one (see above). Throws a job-wide
  // Error (invalid input) when it belongs to another run, or what the source throws.
  void resume();

  int64_t parameter_count() const { return parameter_count_; }

  // Trains on `train`, evaluating on `test` after each epoch; `progress` (may be null) sees every
  // step and epoch. Returns the summary with the final evaluation.
  // The final checkpoint goes to `save_path` on rank 0; if the disk fails there (an I/O error),
  // the message says where the trained model is kept instead: the coordinator or checkpoint
  // directory when they hold it, else `<temp dir>/convoy-<job>-<pid>.ckpt`.
  // When options.train.stop_requested stops training (summary.stopped: a preemption), the
  // position reached is stored as a checkpoint (at most 15 s of waiting), nothing is evaluated and
  // `save_path` is not written: the run is to be resumed.
  TrainSummary run(const Dataset& train, const Dataset& test, TrainObserver* progress);

  // After run(): throws Error (unavailable) when the last checkpoint could not be stored at the
  // coordinator or in the checkpoint directory, so that the job does not end as a success.
  void check_stored() const;

 private:
  Job& job_;
  pb::ModelSpec spec_;
  TrainingSessionOptions options_;
  Say warn_, notice_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  Model model_;
  Optimizer optimizer_;
  std::optional<WeightAverage> average_;  // when options.train.ema_decay > 0
  std::optional<GradientReducer> reducer_;
  int64_t parameter_count_ = 0;
  std::string unstored_;  // why the last checkpoint is not stored; empty when it is

  void save_final(const pb::Checkpoint& checkpoint, const std::string& stored_at);
};

// The job id a run reports as when none is given: the model's name (or the model file's stem),
// with characters a job id may not hold replaced by '_'.
std::string default_job_id(const pb::ModelSpec& spec, const std::string& model_source);

}  // namespace convoy
