#include "sgd.h"

namespace convoy {

Sgd::Sgd(std::vector<Parameter*> parameters, SgdConfig config)
    : parameters_(std::move(parameters)), config_(config) {
  for (Parameter* p : parameters_) {
    velocity_.emplace_back(p->value.desc(), p->value.memory().get_engine());
  }
}

void Sgd::step() {
  const float lr = config_.learning_rate;
  const float mu = config_.momentum;
  const float wd = config_.weight_decay;
  const bool nesterov = config_.nesterov;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    float* w = parameters_[i]->value.data();
    const float* grad = parameters_[i]->grad.data();
    float* v = velocity_[i].data();
    const auto n = static_cast<int64_t>(parameters_[i]->value.bytes() / sizeof(float));
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t j = 0; j < n; ++j) {
      const float g = grad[j] + wd * w[j];
      v[j] = mu * v[j] + g;
      w[j] -= lr * (nesterov ? g + mu * v[j] : v[j]);
    }
  }
}

}  // namespace convoy
