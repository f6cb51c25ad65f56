// Model: a validated spec built into layers for one batch size.
//
// Construction validates the spec (plan_model), creates every layer through the registry and builds
// all primitives: forward first to last, then (in training mode) backward last to first. After
// that, a step is: set_input() -> forward() -> loss() -> backward(); none of them allocates or
// creates primitives. Parameters start at zero; call initialize(seed) or load values.
//
// A Model is used from one thread at a time.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/layer.h"
#include "core/model_spec.h"
#include "core/softmax_cross_entropy.h"
#include "proto/model.pb.h"

namespace convoy {

class Model {
 public:
  enum class Mode { kTrain, kInference };

  // Throws Error (naming `source`) when the spec is invalid, or when this CPU cannot compute in
  // `precision` (precision.h).
  Model(const pb::ModelSpec& spec, int64_t batch_size, const dnnl::engine& engine, Mode mode,
        const std::string& source = "model", Precision precision = Precision::kFloat32);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const pb::ModelSpec& spec() const { return spec_; }
  const ModelPlan& plan() const { return plan_; }
  int64_t batch_size() const { return batch_size_; }
  Precision precision() const { return ctx_.precision(); }
  int num_classes() const { return plan_.num_classes; }
  // Floats per sample in the plain input layout (channels x spatial).
  int64_t sample_size() const { return plan_.input.elements(); }

  // Copies a plain [batch, channels, spatial...] batch into the model's input buffer.
  void set_input(std::span<const float> batch);
  // Runs the layers first to last; after layer i, `layer_done(i)` is called when given.
  void forward(const dnnl::stream& stream,
               const std::function<void(size_t layer)>& layer_done = nullptr);
  // Loss over the first `count` rows and its gradient with respect to the logits, divided by
  // `gradient_divisor` (0: by `count`; see softmax_cross_entropy.h).
  LossResult loss(const dnnl::stream& stream, std::span<const int32_t> labels, int64_t count,
                  int64_t gradient_divisor = 0, float label_smoothing = 0.f);
  // Runs backward layer by layer from the last; after layer i finishes, `layer_done(i)` is called
  // (its parameter gradients are final then). Training mode only.
  void backward(const dnnl::stream& stream,
                const std::function<void(size_t layer)>& layer_done = nullptr);

  // Plain [batch, classes] logits of the last forward(); predictions of the last loss().
  const Tensor& logits() const { return logits_; }
  std::span<const int32_t> predictions() const { return loss_->predictions(); }

  // The layers in execution order: the spec's order, except that a ReLU directly followed by max
  // pooling runs after it (see model.cc). Layers with parameters keep their spec index.
  size_t layer_count() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  // Every parameter, layer by layer, weight before bias.
  std::vector<Parameter*> parameters();
  // Every buffer (batch norm's running statistics), layer by layer.
  std::vector<Buffer*> buffers();
  // Draws weights as the spec asks (He/Xavier/LeCun) from `seed`; zeroes biases and gradients;
  // sets buffers to their initial values.
  void initialize(uint64_t seed);

  // Evaluation mode: dropout off, batch norm on running statistics. A model built for inference
  // is always evaluating.
  void set_evaluating(bool evaluating);
  // The keys of the batch's rows for the next training step (one per row, batch_size() of them):
  // what dropout draws its mask from. The trainer derives them from (seed, epoch, sample index),
  // so a sample gets the same mask whichever process and batch row it lands in.
  std::span<uint64_t> row_keys() { return ctx_.row_keys(); }
  // After a training step: folds the batch statistics of every batch norm layer into its running
  // statistics. `average` (when given) turns this process's batch statistics into their mean over
  // all processes, in place, so that every process keeps the same running statistics.
  void update_running_statistics(const std::function<void(std::span<float>)>& average = nullptr);

 private:
  pb::ModelSpec spec_;
  ModelPlan plan_;
  int64_t batch_size_;
  bool training_;
  BuildContext ctx_;
  Tensor input_;
  std::vector<std::unique_ptr<Layer>> layers_;
  Tensor logits_, diff_logits_;
  std::vector<Op> head_forward_ops_, head_backward_ops_;
  std::vector<dnnl::memory> keep_alive_;
  std::unique_ptr<SoftmaxCrossEntropy> loss_;
  std::vector<float> statistics_;  // every batch norm layer's batch statistics, back to back
};

}  // namespace convoy
