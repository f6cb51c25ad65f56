#include "core/optimizer.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace convoy {

OptimizerConfig::Kind OptimizerConfig::parse_kind(const std::string& name) {
  if (name == "sgd") return Kind::kSgd;
  if (name == "adam") return Kind::kAdam;
  if (name == "adamw") return Kind::kAdamW;
  throw Error::invalid_input(fmt::format("optimizer '{}' is not one of sgd, adam, adamw", name));
}

std::string OptimizerConfig::kind_name(Kind kind) {
  switch (kind) {
    case Kind::kSgd:
      return "sgd";
    case Kind::kAdam:
      return "adam";
    case Kind::kAdamW:
      return "adamw";
  }
  return "sgd";
}

Optimizer::Optimizer(std::vector<Parameter*> parameters, OptimizerConfig config)
    : parameters_(std::move(parameters)), config_(config) {
  for (Parameter* p : parameters_) {
    first_.emplace_back(p->value.desc(), p->value.memory().get_engine());
    second_.emplace_back(
        has_second_moment() ? Tensor(p->value.desc(), p->value.memory().get_engine()) : Tensor());
  }
}

void Optimizer::step() {
  ++steps_;
  if (config_.kind == OptimizerConfig::Kind::kSgd) {
    sgd_step();
  } else {
    adam_step();
  }
}

void Optimizer::sgd_step() {
  const float lr = config_.learning_rate;
  const float mu = config_.momentum;
  const float wd = config_.weight_decay;
  const bool nesterov = config_.nesterov;
  // One parallel region for every parameter (threads go on to the next parameter without
  // waiting: no element is touched twice), rather than one per parameter.
#pragma omp parallel
  for (size_t i = 0; i < parameters_.size(); ++i) {
    float* w = parameters_[i]->value.data();
    const float* grad = parameters_[i]->grad.data();
    float* v = first_[i].data();
    const auto n = static_cast<int64_t>(parameters_[i]->value.bytes() / sizeof(float));
#pragma omp for simd schedule(static) nowait
    for (int64_t j = 0; j < n; ++j) {
      const float g = grad[j] + wd * w[j];
      v[j] = mu * v[j] + g;
      w[j] -= lr * (nesterov ? g + mu * v[j] : v[j]);
    }
  }
}

void Optimizer::adam_step() {
  const float lr = config_.learning_rate;
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.epsilon;
  const bool decoupled = config_.kind == OptimizerConfig::Kind::kAdamW;
  const float l2 = decoupled ? 0.f : config_.weight_decay;
  const float shrink = decoupled ? 1.f - lr * config_.weight_decay : 1.f;
  const auto t = static_cast<double>(steps_);
  const auto correction1 = static_cast<float>(1.0 - std::pow(double(b1), t));
  const auto sqrt_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(double(b2), t)));
  // PyTorch's arrangement: w -= (lr / c1) * m / (sqrt(s) / sqrt(c2) + eps).
  const float step_size = lr / correction1;
#pragma omp parallel  // as in sgd_step
  for (size_t i = 0; i < parameters_.size(); ++i) {
    float* w = parameters_[i]->value.data();
    const float* grad = parameters_[i]->grad.data();
    float* m = first_[i].data();
    float* s = second_[i].data();
    const auto n = static_cast<int64_t>(parameters_[i]->value.bytes() / sizeof(float));
#pragma omp for simd schedule(static) nowait
    for (int64_t j = 0; j < n; ++j) {
      const float g = grad[j] + l2 * w[j];
      w[j] *= shrink;
      m[j] = b1 * m[j] + (1 - b1) * g;
      s[j] = b2 * s[j] + (1 - b2) * g * g;
      w[j] -= step_size * m[j] / (std::sqrt(s[j]) / sqrt_correction2 + eps);
    }
  }
}

}  // namespace convoy
