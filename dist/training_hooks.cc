#include "dist/training_hooks.h"

#include "core/stopwatch.h"

namespace convoy {

TrainingHooks::TrainingHooks(Options options, Model& model, Optimizer& optimizer,
                             TrainObserver* progress, CoordinatorReporter* reporter,
                             CheckpointSink* checkpoints)
    : options_(std::move(options)),
      model_(model),
      optimizer_(optimizer),
      progress_(progress),
      reporter_(reporter),
      checkpoints_sink_(checkpoints) {
  position_.seed = options_.seed;
  position_.batch_size = static_cast<int32_t>(options_.batch_size);
  position_.world_size = options_.world_size;
  position_.dataset = options_.dataset;
  position_.epoch = options_.start_epoch;
  position_.step_in_epoch = options_.start_step_in_epoch;
  position_.step = options_.start_step;
}

void TrainingHooks::on_step(const StepStats& s) {
  stepped_ = true;
  position_.epoch = s.epoch;
  position_.step_in_epoch = s.step_in_epoch;
  position_.step = s.step;
  if (progress_ != nullptr) progress_->on_step(s);
  if (reporter_ != nullptr) {
    pb::StepRecord r;
    r.set_rank(options_.rank);
    r.set_step(s.step);
    r.set_epoch(s.epoch);
    r.set_loss(s.loss);
    r.set_accuracy(s.accuracy);
    r.set_images_per_second(s.step_seconds > 0 ? double(options_.batch_size) / s.step_seconds
                                               : 0.0);
    r.set_step_seconds(s.step_seconds);
    r.set_allreduce_seconds(s.communication_seconds);
    r.set_wall_time(wall_seconds());
    r.set_learning_rate(s.learning_rate);
    r.set_total_steps(s.total_steps);
    reporter_->record_step(r);
  }
  if (checkpoints_sink_ != nullptr && options_.checkpoint_every > 0 &&
      s.step % options_.checkpoint_every == 0) {
    checkpoint(std::nullopt);
  }
}

void TrainingHooks::on_epoch(const EpochStats& e) {
  if (progress_ != nullptr) progress_->on_epoch(e);
  if (!e.test) return;
  if (reporter_ != nullptr && options_.rank == 0) {
    pb::EvaluationRecord r;
    r.set_job_id(options_.job_id);
    r.set_epoch(e.epoch);
    r.set_step(position_.step);
    r.set_test_accuracy(e.test->confusion.accuracy());
    r.set_test_loss(e.test->loss);
    for (int c = 0; c < e.test->confusion.classes(); ++c) {
      r.add_precision(e.test->confusion.precision(c));
      r.add_recall(e.test->confusion.recall(c));
    }
    for (const int64_t count : e.test->confusion.counts()) r.add_confusion(count);
    r.set_wall_time(wall_seconds());
    reporter_->record_evaluation(r);
  }
  if (checkpoints_sink_ != nullptr) checkpoint(e.test->confusion.accuracy());
}

void TrainingHooks::checkpoint(const std::optional<double>& test_accuracy) {
  const Stopwatch serialize;
  pb::CheckpointInfo header;
  header.set_job_id(options_.job_id);
  header.set_step(position_.step);
  header.set_epoch(position_.epoch);
  if (test_accuracy) {
    header.set_test_accuracy(*test_accuracy);
    header.set_has_test_accuracy(true);
  }
  std::string bytes =
      serialize_checkpoint(make_checkpoint(model_, &optimizer_, position_, options_.average));
  checkpoint_ms_ += serialize.milliseconds();
  ++checkpoints_;
  last_checkpoint_step_ = position_.step;
  checkpoints_sink_->submit(std::move(header), std::move(bytes));
}

void TrainingHooks::checkpoint_final(std::optional<double> test_accuracy) {
  if (checkpoints_sink_ != nullptr && stepped_ && last_checkpoint_step_ != position_.step) {
    checkpoint(test_accuracy);
  }
}

}  // namespace convoy
