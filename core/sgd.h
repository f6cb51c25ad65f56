// Sgd: stochastic gradient descent with momentum, optional Nesterov momentum and L2 weight decay,
// with PyTorch's torch.optim.SGD semantics (dampening 0):
//   g = grad + weight_decay * w
//   v = momentum * v + g                     (v starts at 0, i.e. v = g on the first step)
//   w = w - lr * (nesterov ? g + momentum * v : v)
// Parameters, gradients and momentum buffers share one layout, so the update runs element by
// element over the raw buffers (block padding stays zero: it is zero in all three).
#pragma once

#include <span>
#include <vector>

#include "layer.h"

namespace convoy {

struct SgdConfig {
  float learning_rate = 0.05f;
  float momentum = 0.9f;
  float weight_decay = 0.f;
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<Parameter*> parameters, SgdConfig config);

  // Applies one update from the current gradients.
  void step();
  const SgdConfig& config() const { return config_; }
  void set_learning_rate(float lr) { config_.learning_rate = lr; }

  // Momentum buffer of parameter i (same desc as its value).
  Tensor& momentum_buffer(size_t i) { return velocity_[i]; }
  const Tensor& momentum_buffer(size_t i) const { return velocity_[i]; }
  const std::vector<Parameter*>& parameters() const { return parameters_; }

 private:
  std::vector<Parameter*> parameters_;
  std::vector<Tensor> velocity_;
  SgdConfig config_;
};

}  // namespace convoy
