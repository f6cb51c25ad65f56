// WeightAverage: an exponential moving average of a model's parameters and running statistics
// (batch norm's), the "EMA of the weights" of fast training recipes (PyTorch's
// torch.optim.swa_utils.AveragedModel with an EMA update, timm's ModelEmaV2):
//
//   after every optimizer step t (1-based):  d = min(decay, (1 + t) / (10 + t))
//                                            average = d * average + (1 - d) * value
//
// The first update copies the values. The warm-up of d (TensorFlow's ExponentialMovingAverage
// with num_updates) lets the average follow the fast early change instead of remembering the
// random start. Averages share their value's desc, so the update runs element by element over the
// raw buffers (block padding stays zero). Every process holds the same values, so every process's
// average is the same too: no communication.
//
// Evaluation uses the average: AveragedWeights swaps it into the model for as long as it lives.
// Checkpoints keep the model's own values (training continues from them) and the average beside
// them (checkpoint.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.h"

namespace convoy {

class WeightAverage {
 public:
  // `decay` in (0, 1).
  WeightAverage(Model& model, float decay);

  float decay() const { return decay_; }
  // Folds the model's current values in (once per optimizer step).
  void update();
  // Updates so far (the warm-up of the decay depends on it).
  int64_t updates() const { return updates_; }
  void set_updates(int64_t updates) { updates_ = updates; }

  // In model order, with the descs of model.parameters() and model.buffers().
  Tensor& parameter(size_t i) { return parameters_[i]; }
  const Tensor& parameter(size_t i) const { return parameters_[i]; }
  Tensor& buffer(size_t i) { return buffers_[i]; }
  const Tensor& buffer(size_t i) const { return buffers_[i]; }

  // Exchanges the averages with the model's values; calling it again undoes it.
  void swap_with_model();

 private:
  std::vector<Tensor*> values_;  // the model's parameters, then its buffers
  std::vector<Tensor> parameters_, buffers_;
  float decay_;
  int64_t updates_ = 0;
};

// Puts the average into the model for as long as it lives (nothing when `average` is null or has
// had no update yet: there is no average of nothing).
class AveragedWeights {
 public:
  explicit AveragedWeights(WeightAverage* average)
      : average_(average != nullptr && average->updates() > 0 ? average : nullptr) {
    if (average_ != nullptr) average_->swap_with_model();
  }
  ~AveragedWeights() {
    if (average_ != nullptr) average_->swap_with_model();
  }
  AveragedWeights(const AveragedWeights&) = delete;
  AveragedWeights& operator=(const AveragedWeights&) = delete;

 private:
  WeightAverage* average_;
};

}  // namespace convoy
