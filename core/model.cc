#include "core/model.h"

#include <algorithm>
#include <cstring>

#include "core/activation.h"
#include "core/error.h"
#include "core/initializer.h"
#include "core/layer_registry.h"
#include "core/random.h"

namespace convoy {

Model::Model(const pb::ModelSpec& spec, int64_t batch_size, const dnnl::engine& engine, Mode mode,
             const std::string& source, Precision precision)
    : spec_(spec),
      plan_(plan_model(spec_, source)),
      batch_size_(batch_size),
      training_(mode == Mode::kTrain),
      ctx_(engine, training_, precision) {
  CONVOY_CHECK(batch_size > 0);
  require_precision(precision, source);
  check_model_fits(plan_, batch_size, training_, source);
  ctx_.set_batch_size(batch_size);
  input_ = Tensor(plain_desc(plan_.input.batch_dims(batch_size)), engine);

  std::vector<const LayerType*> types;  // in the order of layers_
  for (const LayerPlan& lp : plan_.layers) {
    types.push_back(find_layer_type(lp.spec->type()));
    layers_.push_back(types.back()->create(*lp.spec, lp.in, lp.name));
  }
  // A ReLU followed by max pooling runs as max pooling followed by the ReLU (the registry says
  // which layers may, and why): the ReLU then works on a quarter of the data for 2x2 pooling.
  // Neither layer has parameters, so parameter order is unchanged.
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    if (types[i]->may_run_after_max_pooling && types[i + 1]->max_pooling) {
      std::swap(layers_[i], layers_[i + 1]);
      std::swap(types[i], types[i + 1]);
      ++i;
    }
  }

  // Forward, first to last: each layer sees the previous layer's output in its chosen layout. A
  // ReLU that the layer before it applies (layer.h) passes its input through.
  const Tensor* src = &input_;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool relu_follows = i + 1 < layers_.size() && types[i + 1]->name == "ReLU";
    if (relu_follows) layers_[i]->offer_following_relu();
    layers_[i]->build_forward(ctx_, *src);
    if (relu_follows && layers_[i]->applies_following_relu()) {
      static_cast<Activation&>(*layers_[i + 1]).pass_through();
    }
    src = &layers_[i]->dst();
  }

  // The head: logits as a plain f32 [batch, classes] view of the last layer's output (the loss
  // computes in f32 whatever the precision; its gradient goes back in the last layer's type).
  const Tensor& last = layers_.back()->dst();
  const Dims flat{batch_size, plan_.num_classes};
  const dnnl::memory last_plain =
      ctx_.convert(last.memory(), plain_desc(last.shape()), head_forward_ops_);
  keep_alive_.push_back(last_plain);
  logits_ = Tensor(dnnl::memory(plain_desc(flat), engine, last_plain.get_data_handle()));
  diff_logits_ = Tensor(plain_desc(flat), engine);
  loss_ = std::make_unique<SoftmaxCrossEntropy>(ctx_, logits_, diff_logits_);

  if (training_) {
    // Backward, last to first: each layer's diff_dst is the next layer's diff_src.
    const dnnl::memory diff_last_plain(plain_desc(last.shape()), engine,
                                       diff_logits_.memory().get_data_handle());
    const Tensor diff_last(ctx_.convert(diff_last_plain, last.desc(), head_backward_ops_));
    const Tensor* diff = &diff_last;
    for (size_t i = layers_.size(); i-- > 0;) {
      layers_[i]->build_backward(ctx_, *diff, /*need_diff_src=*/i > 0);
      diff = &layers_[i]->diff_src();
    }
  }
  ctx_.scratchpad().allocate();
  size_t statistics = 0;
  for (const auto& layer : layers_) statistics += layer->batch_statistics().size();
  statistics_.assign(statistics, 0.f);
}

void Model::set_input(std::span<const float> batch) {
  CONVOY_CHECK(static_cast<int64_t>(batch.size()) == input_.size());
  std::memcpy(input_.data(), batch.data(), batch.size_bytes());
}

void Model::forward(const dnnl::stream& stream, const std::function<void(size_t)>& layer_done) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->forward(stream);
    if (layer_done) layer_done(i);
  }
  for (const Op& op : head_forward_ops_) op.run(stream);
}

LossResult Model::loss(const dnnl::stream& stream, std::span<const int32_t> labels, int64_t count,
                       int64_t gradient_divisor, float label_smoothing) {
  return loss_->compute(stream, labels, count, gradient_divisor, label_smoothing);
}

void Model::backward(const dnnl::stream& stream, const std::function<void(size_t)>& layer_done) {
  CONVOY_CHECK(training_);
  for (const Op& op : head_backward_ops_) op.run(stream);
  for (size_t i = layers_.size(); i-- > 0;) {
    layers_[i]->backward(stream);
    if (layer_done) layer_done(i);
  }
}

std::vector<Buffer*> Model::buffers() {
  std::vector<Buffer*> buffers;
  for (const auto& layer : layers_) {
    for (Buffer& b : layer->buffers()) buffers.push_back(&b);
  }
  return buffers;
}

void Model::set_evaluating(bool evaluating) {
  for (const auto& layer : layers_) layer->set_evaluating(evaluating);
}

void Model::update_running_statistics(const std::function<void(std::span<float>)>& average) {
  if (statistics_.empty()) return;
  size_t offset = 0;
  for (const auto& layer : layers_) {
    const std::span<float> s = layer->batch_statistics();
    std::copy(s.begin(), s.end(), statistics_.begin() + static_cast<std::ptrdiff_t>(offset));
    offset += s.size();
  }
  if (average) average(statistics_);
  offset = 0;
  for (const auto& layer : layers_) {
    const std::span<float> s = layer->batch_statistics();
    if (s.empty()) continue;
    std::copy_n(statistics_.begin() + static_cast<std::ptrdiff_t>(offset), s.size(), s.begin());
    offset += s.size();
    layer->update_running_statistics();
  }
}

std::vector<Parameter*> Model::parameters() {
  std::vector<Parameter*> params;
  for (const auto& layer : layers_) {
    for (Parameter& p : layer->parameters()) params.push_back(&p);
  }
  return params;
}

void Model::initialize(uint64_t seed) {
  uint64_t index = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (Parameter& p : layers_[i]->parameters()) {
      p.grad.zero();
      if (p.initial_value) {
        p.value.copy_from_plain(
            std::vector<float>(static_cast<size_t>(p.value.size()), *p.initial_value));
      } else if (p.is_bias()) {
        p.value.zero();
      } else {
        const pb::Init init = resolve_init(spec_, static_cast<int>(i));
        p.value.copy_from_plain(
            draw_weights(init, p.value.size(), p.fan_in, p.fan_out, mix_seed(seed, index)));
      }
      ++index;
    }
    for (Buffer& b : layers_[i]->buffers()) {
      b.value.copy_from_plain(
          std::vector<float>(static_cast<size_t>(b.value.size()), b.initial_value));
    }
  }
}

}  // namespace convoy
