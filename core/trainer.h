// Trainer: the training loop of one process, and evaluation.
//
// A step is: batch (prepared by BatchLoader on its thread) -> Model::set_input -> forward -> loss
// -> backward (handing each layer's gradients to the ProcessGroup as they are ready) -> gradient
// averaging across processes -> optimizer update. Each epoch visits epoch_permutation(seed, epoch)
// (this process's share of it, when there are several) in full batches; the last incomplete
// batch of an epoch is skipped (its samples come up in later epochs, since each epoch is shuffled
// anew). evaluate() visits every sample exactly once, padding the last batch and counting only
// its real rows. Losses, accuracies and confusion matrices are summed over all processes, so every
// number reported is the job's, and every process takes the same decisions (stop on NaN).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/batch_loader.h"
#include "core/dataset.h"
#include "core/lr_schedule.h"
#include "core/metrics.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/process_group.h"
#include "core/timeline.h"
#include "core/weight_average.h"

namespace convoy {

struct TrainOptions {
  int64_t epochs = 5;
  int64_t max_steps = 0;  // stop after this many optimizer steps in total; 0: no limit
  uint64_t seed = 1;
  LrSchedule schedule;  // sets the optimizer's learning rate before every step
  // Resuming: start in epoch `start_epoch` after its first `start_step_in_epoch` steps, with
  // `start_step` optimizer steps already taken (the model and optimizer already restored).
  int64_t start_epoch = 0;
  int64_t start_step_in_epoch = 0;
  int64_t start_step = 0;
  Augmentation augmentation = {};  // of training samples
  float label_smoothing = 0.f;     // of the training loss (softmax_cross_entropy.h)
  bool test_flip = false;          // evaluate() with `mirror` (test-time augmentation)
  // Keep an exponential moving average of the weights with this decay (weight_average.h) and
  // evaluate it; 0: none. The Trainer's owner creates the WeightAverage (set_weight_average).
  float ema_decay = 0.f;
  // Polled on every process at each step; when it says yes on any process, every process stops
  // after that step (TrainSummary::stopped) -- a graceful preemption. The verdict travels with the
  // step's gradients, so it costs no collective of its own.
  std::function<bool()> stop_requested = nullptr;
};

struct StepStats {
  int64_t epoch = 0;          // 0-based
  int64_t step = 0;           // optimizer steps taken so far (1-based after the first step)
  int64_t step_in_epoch = 0;  // 1-based
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;             // steps the whole run will take
  double loss = 0.0;                   // this (global) batch
  double accuracy = 0.0;               // this (global) batch
  double learning_rate = 0.0;          // used for this step
  double step_seconds = 0.0;           // this step's time in this process
  double communication_seconds = 0.0;  // of which waiting for gradients of other processes
  double images_per_second = 0.0;      // training throughput so far in this epoch, all processes
  double train_seconds = 0.0;          // training time so far (evaluation excluded)
};

struct EvalResult {
  ConfusionMatrix confusion;
  double loss = 0.0;  // mean cross-entropy
};

struct EpochStats {
  int64_t epoch = 0;      // 0-based
  int64_t steps = 0;      // steps in this epoch
  double loss = 0.0;      // mean training loss over the epoch's batches
  double accuracy = 0.0;  // training accuracy over the epoch's samples
  double seconds = 0.0;   // training time of the epoch
  double images_per_second = 0.0;
  std::optional<EvalResult> test;  // when a test set was given
};

struct TrainSummary {
  int64_t epochs = 0;  // epochs started (the last may be cut short by max_steps)
  int64_t steps = 0;
  int64_t images = 0;
  double seconds = 0.0;            // training time, evaluation excluded
  std::optional<EvalResult> test;  // the evaluation after the last epoch, when a test set was given
  bool stopped = false;            // stop_requested ended training early (no evaluation ran)
  double images_per_second() const { return seconds > 0 ? double(images) / seconds : 0.0; }
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_step(const StepStats&) {}
  virtual void on_epoch(const EpochStats&) {}
};

class Trainer {
 public:
  // `group`: the other processes of a data-parallel job; null for a single process.
  Trainer(Model& model, Optimizer& optimizer, const dnnl::stream& stream,
          ProcessGroup* group = nullptr);

  // The training loss's label smoothing from now on (fit() sets its options').
  void set_label_smoothing(float smoothing) { label_smoothing_ = smoothing; }
  // One optimizer step on the batch's first `count` rows. Returns the mean loss over all
  // processes' batches and the number of correct predictions among them. `stop`: this process
  // asks the job to stop after this step; stop_agreed() then tells every process.
  LossResult step(const Batch& batch, bool stop = false);
  bool stop_agreed() const { return stop_agreed_; }
  // Records each step's spans (layers, loss, data waits, gradient finish, optimizer) there; null:
  // nothing recorded. Not owned.
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }
  // Updated after every step and evaluated in place of the model's own values (fit()'s
  // evaluations); null: none. Not owned.
  void set_weight_average(WeightAverage* average) { average_ = average; }

  // Trains on `train` as `options` say; evaluates on `test` after each epoch when given. Throws
  // Error (invalid input) when the loss becomes NaN or infinite (naming the step), or when the data
  // set has fewer samples than one batch.
  TrainSummary fit(const Dataset& train, const TrainOptions& options, TrainObserver* observer,
                   const Dataset* test = nullptr);

 private:
  Model& model_;
  Optimizer& optimizer_;
  dnnl::stream stream_;
  SingleProcess single_;
  ProcessGroup& group_;
  int64_t steps_ = 0;
  bool stop_agreed_ = false;
  float label_smoothing_ = 0.f;
  double last_step_seconds_ = 0.0, last_communication_seconds_ = 0.0;
  Timeline* timeline_ = nullptr;
  WeightAverage* average_ = nullptr;
};

// Sets the model's row keys (what dropout draws from) for `batch` in `epoch`: a function of the
// seed, the epoch and each sample's index, not of its process or row.
void set_row_keys(Model& model, const Batch& batch, uint64_t seed, int64_t epoch);

// Throws Error (invalid input) when a global batch (the per-process batch times the
// number of processes) exceeds the training set: not even one full step.
void check_batch_fits(int64_t global_batch, const Dataset& train);

// Forward passes over every sample of `data` once, spread over the processes of `group` (null: a
// single process); the result is the whole data set's. The model must match the sample shape.
// `mirror`: each sample is also run with its last spatial dimension reversed (a horizontal flip
// of an image), and the two logits averaged before the loss and the prediction.
EvalResult evaluate(Model& model, const dnnl::stream& stream, const Dataset& data,
                    ProcessGroup* group = nullptr, bool mirror = false);

}  // namespace convoy
