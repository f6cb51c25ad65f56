#include "core/weight_average.h"

#include <algorithm>

namespace convoy {

namespace {

std::span<float> floats(Tensor& t) {
  return {t.data(), t.bytes() / sizeof(float)};
}

}  // namespace

WeightAverage::WeightAverage(Model& model, float decay) : decay_(decay) {
  for (Parameter* p : model.parameters()) {
    values_.push_back(&p->value);
    parameters_.emplace_back(p->value.desc(), p->value.memory().get_engine());
  }
  for (Buffer* b : model.buffers()) {
    values_.push_back(&b->value);
    buffers_.emplace_back(b->value.desc(), b->value.memory().get_engine());
  }
}

void WeightAverage::update() {
  ++updates_;
  const auto t = static_cast<float>(updates_);
  const float d = updates_ == 1 ? 0.f : std::min(decay_, (1.f + t) / (10.f + t));
  const size_t n_parameters = parameters_.size();
#pragma omp parallel  // one region for all tensors, as in Optimizer::sgd_step
  for (size_t i = 0; i < values_.size(); ++i) {
    Tensor& average = i < n_parameters ? parameters_[i] : buffers_[i - n_parameters];
    const float* v = values_[i]->data();
    float* a = average.data();
    const auto n = static_cast<int64_t>(average.bytes() / sizeof(float));
#pragma omp for simd schedule(static) nowait
    for (int64_t j = 0; j < n; ++j) a[j] = d * a[j] + (1.f - d) * v[j];
  }
}

void WeightAverage::swap_with_model() {
  const size_t n_parameters = parameters_.size();
  for (size_t i = 0; i < values_.size(); ++i) {
    Tensor& average = i < n_parameters ? parameters_[i] : buffers_[i - n_parameters];
    const std::span<float> a = floats(average), v = floats(*values_[i]);
    std::swap_ranges(a.begin(), a.end(), v.begin());
  }
}

}  // namespace convoy
