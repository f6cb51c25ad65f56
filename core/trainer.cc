#include "core/trainer.h"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/augmentation.h"
#include "core/error.h"
#include "core/random.h"
#include "core/shuffle.h"
#include "core/stopwatch.h"

namespace convoy {

namespace {

// Sets the model for evaluation for as long as it lives.
class Evaluating {
 public:
  explicit Evaluating(Model& model) : model_(model) { model_.set_evaluating(true); }
  ~Evaluating() { model_.set_evaluating(false); }
  Evaluating(const Evaluating&) = delete;
  Evaluating& operator=(const Evaluating&) = delete;

 private:
  Model& model_;
};

}  // namespace

void set_row_keys(Model& model, const Batch& batch, uint64_t seed, int64_t epoch) {
  // A stream of its own (not the permutation's or the initialisation's), then one per epoch.
  const uint64_t epoch_key = mix_seed(mix_seed(seed, 0x524f57u), static_cast<uint64_t>(epoch));
  const std::span<uint64_t> keys = model.row_keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = mix_seed(epoch_key, static_cast<uint64_t>(batch.ids[i]));
  }
}

Trainer::Trainer(Model& model, Optimizer& optimizer, const dnnl::stream& stream,
                 ProcessGroup* group)
    : model_(model),
      optimizer_(optimizer),
      stream_(stream),
      group_(group != nullptr ? *group : single_) {}

LossResult Trainer::step(const Batch& batch, bool stop) {
  const Stopwatch start;
  // With a timeline, each layer's span runs from the previous one's end to its own. The
  // callbacks capture one pointer: a std::function that small allocates nothing.
  struct LayerSpans {
    Trainer& trainer;
    Timeline::Clock::time_point mark;
    void record(size_t layer, const char* pass) {
      const Timeline::Clock::time_point now = Timeline::Clock::now();
      trainer.timeline_->span(Timeline::kTrain,
                              fmt::format("{} {}", pass, trainer.model_.layer(layer).name()), pass,
                              mark, now);
      mark = now;
    }
  } spans{*this, {}};
  {
    const Timeline::Scope input(timeline_, Timeline::kTrain, "input", "data");
    model_.set_input({batch.samples.data(), batch.samples.size()});
  }
  if (timeline_ != nullptr) {
    spans.mark = Timeline::Clock::now();
    model_.forward(stream_, [&spans](size_t layer) { spans.record(layer, "forward"); });
  } else {
    model_.forward(stream_);
  }
  // Every process's gradient is its share of the global batch's mean: summed by the group, they
  // make that mean.
  LossResult local;
  {
    const Timeline::Scope loss(timeline_, Timeline::kTrain, "loss", "forward");
    local = model_.loss(stream_, batch.labels, batch.count, batch.count * group_.size(),
                        label_smoothing_);
  }
  if (timeline_ != nullptr) spans.mark = Timeline::Clock::now();
  model_.backward(stream_, [&spans](size_t layer) {
    Trainer& t = spans.trainer;
    if (t.timeline_ != nullptr) spans.record(layer, "backward");
    t.group_.gradients_ready(layer);
    if (t.timeline_ != nullptr) spans.mark = Timeline::Clock::now();  // not the layer's time
  });
  // The job's loss and accuracy travel with the gradients (no extra collective), so every process
  // sees the same totals and reaches the same verdict on a NaN before anyone updates -- and on a
  // request to stop.
  std::array<double, 4> totals{local.loss * double(batch.count), double(local.correct),
                               double(batch.count), stop ? 1.0 : 0.0};
  const Stopwatch communication;
  {
    const Timeline::Scope finish(timeline_, Timeline::kTrain, "finish gradients", "allreduce");
    group_.finish_gradients(totals);
  }
  last_communication_seconds_ = communication.seconds();
  stop_agreed_ = totals[3] > 0.5;
  const LossResult result{totals[0] / totals[2], static_cast<int64_t>(std::llround(totals[1]))};
  if (!std::isfinite(result.loss)) {
    throw Error::invalid_input(
        fmt::format("training diverged: the loss is {} at step {}; try a lower learning rate",
                    std::isnan(result.loss) ? "NaN" : "infinite", steps_ + 1))
        .set_job_wide();
  }
  {
    const Timeline::Scope update(timeline_, Timeline::kTrain, "optimizer", "optimizer");
    optimizer_.step();
  }
  // Batch norm: every process folds the same (process-averaged) batch statistics into its
  // running statistics, so the replicas stay identical.
  model_.update_running_statistics([this](std::span<float> statistics) {
    group_.sum(statistics);
    const float scale = 1.f / static_cast<float>(group_.size());
    for (float& s : statistics) s *= scale;
  });
  if (average_ != nullptr) {
    const Timeline::Scope update(timeline_, Timeline::kTrain, "weight average", "optimizer");
    average_->update();
  }
  ++steps_;
  last_step_seconds_ = start.seconds();
  return result;
}

TrainSummary Trainer::fit(const Dataset& train, const TrainOptions& options,
                          TrainObserver* observer, const Dataset* test) {
  const int64_t batch = model_.batch_size();
  check_batch_fits(batch * group_.size(), train);
  std::vector<int64_t> order = epoch_permutation(train.count(), options.seed, 0);
  group_.select_training_samples(order, batch);
  const auto steps_per_epoch = static_cast<int64_t>(order.size()) / batch;
  int64_t total_steps = steps_per_epoch * options.epochs;
  if (options.max_steps > 0) total_steps = std::min(total_steps, options.max_steps);

  BatchLoader loader(train, batch);
  label_smoothing_ = options.label_smoothing;
  TrainSummary summary;
  summary.steps = options.start_step;
  steps_ = options.start_step;
  for (int64_t epoch = options.start_epoch; epoch < options.epochs && summary.steps < total_steps;
       ++epoch) {
    // Resuming mid-epoch: the same permutation, without the batches already trained on.
    const int64_t skip = epoch == options.start_epoch ? options.start_step_in_epoch : 0;
    if (skip >= steps_per_epoch) continue;  // that epoch was complete
    order = epoch_permutation(train.count(), options.seed, epoch);
    group_.select_training_samples(order, batch);
    order.erase(order.begin(), order.begin() + skip * batch);
    loader.start(std::move(order), /*keep_partial=*/false, options.augmentation,
                 mix_seed(mix_seed(options.seed, 0x415547u), static_cast<uint64_t>(epoch)));
    ++summary.epochs;
    EpochStats stats;
    stats.epoch = epoch;
    double loss_sum = 0.0;
    int64_t correct = 0, images = 0;
    const Stopwatch start;
    while (summary.steps < total_steps) {
      const Timeline::Clock::time_point wait_start =
          timeline_ != nullptr ? Timeline::Clock::now() : Timeline::Clock::time_point{};
      const Batch* b = loader.next();
      if (b == nullptr) break;
      if (timeline_ != nullptr) {
        timeline_->begin_step(summary.steps + 1);
        timeline_->span(Timeline::kTrain, "wait for batch", "data", wait_start,
                        Timeline::Clock::now());
      }
      const double lr = options.schedule.at(summary.steps, steps_per_epoch, total_steps);
      optimizer_.set_learning_rate(static_cast<float>(lr));
      set_row_keys(model_, *b, options.seed, epoch);
      const LossResult r = step(*b, options.stop_requested && options.stop_requested());
      ++summary.steps;
      ++stats.steps;
      loss_sum += r.loss;
      correct += r.correct;
      images += b->count * group_.size();
      if (observer != nullptr) {
        const double elapsed = start.seconds();
        observer->on_step({.epoch = epoch,
                           .step = summary.steps,
                           .step_in_epoch = skip + stats.steps,
                           .steps_per_epoch = steps_per_epoch,
                           .total_steps = total_steps,
                           .loss = r.loss,
                           .accuracy = double(r.correct) / double(b->count * group_.size()),
                           .learning_rate = lr,
                           .step_seconds = last_step_seconds_,
                           .communication_seconds = last_communication_seconds_,
                           .images_per_second = double(images) / elapsed,
                           .train_seconds = summary.seconds + elapsed});
      }
      if (stop_agreed_) break;
    }
    stats.seconds = start.seconds();
    summary.seconds += stats.seconds;
    summary.images += images;
    stats.loss = loss_sum / double(std::max<int64_t>(stats.steps, 1));
    stats.accuracy = double(correct) / double(std::max<int64_t>(images, 1));
    stats.images_per_second = double(images) / stats.seconds;
    if (stop_agreed_) {
      summary.stopped = true;  // mid-epoch: no evaluation, no epoch report
      break;
    }
    if (test != nullptr) {
      const AveragedWeights averaged(average_);
      stats.test = summary.test = evaluate(model_, stream_, *test, &group_, options.test_flip);
      // The last update can leave non-finite parameters that no training step has seen yet.
      if (!std::isfinite(stats.test->loss)) {
        throw Error::invalid_input(
            fmt::format("training diverged: the test loss is {} after step {}; try a lower "
                        "learning rate",
                        std::isnan(stats.test->loss) ? "NaN" : "infinite", steps_))
            .set_job_wide();
      }
    }
    if (observer != nullptr) observer->on_epoch(stats);
  }
  return summary;
}

void check_batch_fits(int64_t global_batch, const Dataset& train) {
  if (global_batch > train.count()) {
    throw Error::invalid_input(
        fmt::format("a global batch of {} is larger than the training set ({} samples)",
                    global_batch, train.count()));
  }
}

EvalResult evaluate(Model& model, const dnnl::stream& stream, const Dataset& data,
                    ProcessGroup* group, bool mirror) {
  EvalResult result{ConfusionMatrix(model.num_classes()), 0.0};
  const Evaluating evaluating(model);
  BatchLoader loader(data, model.batch_size());
  SingleProcess single;
  ProcessGroup& g = group != nullptr ? *group : single;
  const auto [begin, end] = g.evaluation_range(data.count());
  std::vector<int64_t> order(static_cast<size_t>(end - begin));
  std::iota(order.begin(), order.end(), begin);
  loader.start(std::move(order), /*keep_partial=*/true);
  double loss_sum = 0.0;
  std::vector<float> mirrored, first_logits;
  const int64_t width = data.shape.spatial.empty() ? 1 : data.shape.spatial.back();
  while (const Batch* b = loader.next()) {
    model.set_input({b->samples.data(), b->samples.size()});
    model.forward(stream);
    if (mirror) {
      // The logits are a plain f32 view (model.h): average them in place with the mirror's.
      const std::span<float> logits(model.logits().data(),
                                    static_cast<size_t>(model.logits().size()));
      first_logits.assign(logits.begin(), logits.end());
      mirrored.assign(b->samples.data(), b->samples.data() + b->samples.size());
      mirror_last_dimension(mirrored, width);
      model.set_input(mirrored);
      model.forward(stream);
      for (size_t i = 0; i < logits.size(); ++i) logits[i] = 0.5f * (logits[i] + first_logits[i]);
    }
    const LossResult r = model.loss(stream, b->labels, b->count);
    loss_sum += r.loss * double(b->count);
    const std::span<const int32_t> predicted = model.predictions();
    for (int64_t i = 0; i < b->count; ++i) {
      result.confusion.add(b->labels[static_cast<size_t>(i)], predicted[static_cast<size_t>(i)]);
    }
  }
  g.sum(result.confusion.counts());
  g.sum(std::span<double>(&loss_sum, 1));
  result.loss = data.count() > 0 ? loss_sum / double(data.count()) : 0.0;
  return result;
}

}  // namespace convoy
