// BatchNorm: batch normalization per channel (per feature after a Dense layer), for inputs with 0
// to 3 spatial dimensions, on oneDNN's batch_normalization primitives, with PyTorch's semantics
// (see BatchNormParams in proto/model.proto).
//
// Training normalizes with the batch's statistics, which the forward primitive writes to
// batch_statistics(); after the step, the model folds them (averaged over processes first, in a
// data-parallel job) into the running statistics: the buffers "<name>.running_mean" and
// "<name>.running_var", saved in checkpoints. Evaluation normalizes with the running statistics.
// Parameters: "<name>.weight" (scale, starts at 1) and "<name>.bias" (shift, starts at 0).
// Layers in the spec: `type: "BatchNorm"` or `type: "BatchNorm" batch_norm { momentum: 0.1 }`.
#pragma once

#include "core/aligned_buffer.h"
#include "core/layer.h"
#include "proto/model.pb.h"

namespace convoy {

struct BatchNormConfig {
  float momentum = 0.1f;
  float epsilon = 1e-5f;

  static BatchNormConfig from_spec(const pb::LayerSpec& spec, const std::string& where);
};

class BatchNorm : public Layer {
 public:
  BatchNorm(std::string name, BatchNormConfig config) : Layer(std::move(name)), config_(config) {}

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;
  std::span<float> batch_statistics() override;
  void update_running_statistics() override;

 private:
  BatchNormConfig config_;
  int64_t channels_ = 0;
  int64_t values_per_channel_ = 0;         // batch x spatial: the count behind each batch statistic
  AlignedBuffer<float> batch_statistics_;  // [mean..., variance...]
  dnnl::memory src_, mean_, variance_;
  dnnl::memory::desc src_in_desc_;  // the layout (and type) the previous layer gave us
  dnnl::batch_normalization_forward::primitive_desc training_pd_;
};

}  // namespace convoy
