// Optimizer: SGD (with momentum, optional Nesterov momentum and L2 weight decay), Adam and AdamW,
// with PyTorch's semantics (torch.optim.SGD with dampening 0, torch.optim.Adam, torch.optim.AdamW):
//
//   SGD    g = grad + wd * w;  v = momentum * v + g  (v = g on the first step)
//          w -= lr * (nesterov ? g + momentum * v : v)
//   Adam   g = grad + wd * w   (L2 penalty in the gradient)
//          m = b1 * m + (1 - b1) * g;  s = b2 * s + (1 - b2) * g^2
//          w -= lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)      (t: steps taken, from 1)
//   AdamW  w -= lr * wd * w   (decoupled weight decay), then Adam's update with g = grad
//
// Parameters, gradients and state buffers share one layout, so the update runs element by element
// over the raw buffers (block padding stays zero: it is zero in all of them). The state (the
// momentum buffer, or Adam's two moments and its step count) is saved in checkpoints.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/layer.h"

namespace convoy {

struct OptimizerConfig {
  enum class Kind { kSgd, kAdam, kAdamW };

  Kind kind = Kind::kSgd;
  float learning_rate = 0.05f;
  float momentum = 0.9f;  // SGD
  float weight_decay = 0.f;
  bool nesterov = false;  // SGD
  float beta1 = 0.9f;     // Adam, AdamW
  float beta2 = 0.999f;
  float epsilon = 1e-8f;

  // "sgd" | "adam" | "adamw"; throws Error (invalid input) otherwise.
  static Kind parse_kind(const std::string& name);
  static std::string kind_name(Kind kind);
};

class Optimizer {
 public:
  Optimizer(std::vector<Parameter*> parameters, OptimizerConfig config);

  // Applies one update from the current gradients.
  void step();
  const OptimizerConfig& config() const { return config_; }
  void set_learning_rate(float lr) { config_.learning_rate = lr; }

  // Per parameter i (same desc as its value): SGD's momentum buffer or Adam's first moment, and
  // Adam's second moment (empty for SGD).
  Tensor& first_moment(size_t i) { return first_[i]; }
  const Tensor& first_moment(size_t i) const { return first_[i]; }
  Tensor& second_moment(size_t i) { return second_[i]; }
  const Tensor& second_moment(size_t i) const { return second_[i]; }
  bool has_second_moment() const { return config_.kind != OptimizerConfig::Kind::kSgd; }
  // Updates applied so far (Adam's bias correction depends on it).
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  const std::vector<Parameter*>& parameters() const { return parameters_; }

 private:
  void sgd_step();
  void adam_step();

  std::vector<Parameter*> parameters_;
  std::vector<Tensor> first_, second_;
  OptimizerConfig config_;
  int64_t steps_ = 0;
};

}  // namespace convoy
