// TrainingHooks: what a TrainingSession does after each step and each epoch besides training:
// progress on rank 0, step records and evaluations to the coordinator (every rank reports its
// own steps; rank 0 the evaluations), and checkpoints on rank 0 every `checkpoint_every` steps and
// after every epoch's evaluation (carrying its test accuracy, which retention keeps the best of).
// Checkpoints are serialized on the training thread (the parameters must not change meanwhile)
// and handed to a CheckpointSink, which stores them in the background.
#pragma once

#include <string>

#include "core/checkpoint.h"
#include "core/trainer.h"
#include "dist/checkpoint_sink.h"
#include "dist/coordinator_reporter.h"

namespace convoy {

class TrainingHooks final : public TrainObserver {
 public:
  struct Options {
    std::string job_id;
    int rank = 0;
    int world_size = 1;
    int64_t batch_size = 0;  // per process
    uint64_t seed = 0;
    std::string dataset;
    int64_t checkpoint_every = 0;  // steps; 0: only after each epoch
    // Where a resumed run starts (its position until its first step).
    int64_t start_epoch = 0, start_step_in_epoch = 0, start_step = 0;
    const WeightAverage* average = nullptr;  // checkpoints carry it, when the run keeps one
  };
  // Any of the pointers may be null.
  TrainingHooks(Options options, Model& model, Optimizer& optimizer, TrainObserver* progress,
                CoordinatorReporter* reporter, CheckpointSink* checkpoints);

  void on_step(const StepStats& s) override;
  void on_epoch(const EpochStats& e) override;

  // Hands the sink a checkpoint of where training stands now, with `test_accuracy` (none after a
  // preemption), unless the
  // last one handed over was taken at this very step or no step ran (the end of training: every
  // rank calls it, only rank 0's sink stores).
  void checkpoint_final(std::optional<double> test_accuracy);

  // Where training stands after the last step seen (for a final checkpoint).
  const TrainingPosition& position() const { return position_; }
  // Milliseconds the training thread spent serializing checkpoints, and how many.
  double checkpoint_milliseconds() const { return checkpoint_ms_; }
  int64_t checkpoints() const { return checkpoints_; }

 private:
  void checkpoint(const std::optional<double>& test_accuracy);

  Options options_;
  Model& model_;
  Optimizer& optimizer_;
  TrainObserver* progress_;
  CoordinatorReporter* reporter_;
  CheckpointSink* checkpoints_sink_;
  TrainingPosition position_;
  double checkpoint_ms_ = 0.0;
  int64_t checkpoints_ = 0;
  int64_t last_checkpoint_step_ = -1;
  bool stepped_ = false;  // a step ran in this run (a resumed, finished job takes none)
};

}  // namespace convoy
