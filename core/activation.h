// Activation: element-wise nonlinearities (ReLU, LeakyReLU, ELU, SELU, Sigmoid, Tanh) on oneDNN's
// eltwise primitives. They work in any layout, so the output and both gradients keep the input's
// layout and an activation never reorders. An activation is a chain of eltwise stages: SELU, which
// oneDNN 2.6 lacks, is ELU(alpha = 1.6733) followed by a linear scale of 1.0507.
#pragma once

#include "core/layer.h"
#include "proto/model.pb.h"

namespace convoy {

struct EltwiseStage {
  dnnl::algorithm algorithm;
  float alpha = 0.f;
  float beta = 0.f;
};

// The stages for an activation type ("ReLU", ...), reading ELU's alpha from the spec.
std::vector<EltwiseStage> activation_stages(const pb::LayerSpec& spec, const std::string& where);

class Activation : public Layer {
 public:
  Activation(std::string name, std::vector<EltwiseStage> stages)
      : Layer(std::move(name)), stages_(std::move(stages)) {}

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;
  // The layer before applies this activation (Layer::applies_following_relu): dst() is src and
  // diff_src() is diff_dst, with no work of its own. Call before build_forward.
  void pass_through() { pass_through_ = true; }

 private:
  bool pass_through_ = false;
  std::vector<EltwiseStage> stages_;
  std::vector<Tensor> stage_src_;  // input of each stage: the layer's src, then intermediates
  std::vector<dnnl::eltwise_forward::primitive_desc> forward_pds_;
};

}  // namespace convoy
