// Trainer: the training loop of one process, and evaluation.
//
// A step is: batch (prepared by BatchLoader on its thread) -> Model::set_input -> forward -> loss
// -> backward -> optimizer update. Each epoch visits epoch_permutation(seed, epoch) in full
// batches; the last incomplete batch of an epoch is skipped (its samples come up in other batches
// in later epochs, since each epoch is shuffled anew). evaluate() visits every sample exactly once,
// padding the last batch and counting only its real rows.
#pragma once

#include <cstdint>
#include <optional>

#include "batch_loader.h"
#include "dataset.h"
#include "metrics.h"
#include "model.h"
#include "sgd.h"

namespace convoy {

struct TrainOptions {
  int64_t epochs = 5;
  int64_t max_steps = 0;  // stop after this many optimizer steps in total; 0: no limit
  uint64_t seed = 1;
};

struct StepStats {
  int64_t epoch = 0;          // 0-based
  int64_t step = 0;           // optimizer steps taken so far (1-based after the first step)
  int64_t step_in_epoch = 0;  // 1-based
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;         // steps the whole run will take
  double loss = 0.0;               // this batch
  double accuracy = 0.0;           // this batch
  double images_per_second = 0.0;  // training throughput so far in this epoch
  double train_seconds = 0.0;      // training time so far (evaluation excluded)
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
  Trainer(Model& model, Sgd& sgd, const dnnl::stream& stream);

  // One optimizer step on the batch's first `count` rows. Returns the batch loss and correct count.
  LossResult step(const Batch& batch);

  // Trains on `train` as `options` say; evaluates on `test` after each epoch when given. Throws
  // InputError when the loss becomes NaN or infinite (naming the step), or when the data set has
  // fewer samples than one batch.
  TrainSummary fit(const Dataset& train, const TrainOptions& options, TrainObserver* observer,
                   const Dataset* test = nullptr);

 private:
  Model& model_;
  Sgd& sgd_;
  dnnl::stream stream_;
  int64_t steps_ = 0;
};

// Throws InputError naming --batch-size when `batch` exceeds the training set (no full batch).
void check_batch_fits(int64_t batch, const Dataset& train);

// Forward passes over every sample of `data` once; the model must match the data's sample shape.
EvalResult evaluate(Model& model, const dnnl::stream& stream, const Dataset& data);

}  // namespace convoy
