// Layer: one step of a network, built once for a batch size, then run many times.
//
// Building happens in two passes (model.cc drives them):
//   1. build_forward(ctx, src), first layer to last. `src` is the previous layer's dst() (or the
//      model's input), in whatever layout that layer's primitive chose. The layer creates its
//      forward primitives (with format_tag::any where oneDNN allows), reorders `src` only if its
//      primitive wants another layout, allocates dst() and its parameters.
//   2. build_backward(ctx, diff_dst, need_diff_src), last layer to first. `diff_dst` always has
//      the same desc as dst(), and diff_src() must have the same desc as `src`: gradients travel
//      in the layout of the activations they belong to. When need_diff_src is false (the first
//      layer) the layer computes parameter gradients only.
// After building, forward() and backward() only execute prepared ops (see op.h).
//
// Parameters live in the layout the forward primitive chose for them; each gradient has the same
// desc as its value, so optimizers can update them element by element.
//
// Layers that behave differently when evaluating (dropout, batch norm) also fill evaluation_ops_,
// which forward() runs instead of forward_ops_ after set_evaluating(true); both write dst().
// Layers with state that is not trained by gradients (batch norm's running statistics) expose it
// as buffers(): saved in checkpoints, identical on every process.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/op.h"
#include "core/tensor.h"

namespace convoy {

struct Parameter {
  std::string name;  // "<layer>.weight" or "<layer>.bias"
  Tensor value;
  Tensor grad;  // same desc as value
  // For weight initialisation: inputs and outputs feeding each output unit (0 for biases).
  int64_t fan_in = 0;
  int64_t fan_out = 0;
  // Starts at this value instead of being drawn (batch norm's scale starts at 1).
  std::optional<float> initial_value;
  // The shape checkpoints and exports give it, when the value's desc has other dims with the same
  // row-major order (a bf16 dense layer keeps [units, features] for [units, channels, h, w]).
  Dims shape = {};
  bool is_bias() const { return fan_in == 0; }
  Dims logical_shape() const { return shape.empty() ? value.shape() : shape; }
};

// State that is part of the model but not a parameter (batch norm's running statistics).
struct Buffer {
  std::string name;  // "<layer>.running_mean"
  Tensor value;      // plain layout
  float initial_value = 0.f;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }

  virtual void build_forward(BuildContext& ctx, const Tensor& src) = 0;
  virtual void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) = 0;

  void forward(const dnnl::stream& stream) const {
    for (const Op& op : evaluating_ && !evaluation_ops_.empty() ? evaluation_ops_ : forward_ops_) {
      op.run(stream);
    }
  }
  void backward(const dnnl::stream& stream) const {
    for (const Op& op : backward_ops_) op.run(stream);
  }

  const Tensor& dst() const { return dst_; }
  const Tensor& diff_src() const { return diff_src_; }
  std::span<Parameter> parameters() { return parameters_; }
  std::span<Buffer> buffers() { return buffers_; }

  // Evaluation mode: dropout passes its input through, batch norm uses its running statistics.
  void set_evaluating(bool evaluating) { evaluating_ = evaluating; }
  // Batch norm: the mean and variance of the last training forward pass, [means..., variances...]
  // per channel (empty for other layers). The model averages them over processes and then calls
  // update_running_statistics().
  virtual std::span<float> batch_statistics() { return {}; }
  virtual void update_running_statistics() {}

  // Fusion of a ReLU into the layer before it (model.cc): when a plain ReLU follows, the model
  // offers it before build_forward; after build_forward the layer says whether it applies the
  // ReLU itself (to its output, and to its gradient in backward). The ReLU then passes through.
  virtual void offer_following_relu() {}
  virtual bool applies_following_relu() const { return false; }

 protected:
  Tensor dst_;
  Tensor diff_src_;
  std::vector<Op> forward_ops_;
  std::vector<Op> backward_ops_;
  std::vector<Op> evaluation_ops_;
  std::vector<Parameter> parameters_;
  std::vector<Buffer> buffers_;
  bool evaluating_ = false;

 private:
  std::string name_;
};

}  // namespace convoy
