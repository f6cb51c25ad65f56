// WeightedLayer: what Conv and Dense share. Both are a forward primitive plus backward-data and
// backward-weights primitives over (src, weights, optional bias, dst); they differ only in how
// their primitive descriptors are created. This class binds those descriptors to memories,
// reordering only where a chosen layout differs from the one at hand:
//   forward:          src -> [reorder] -> primitive -> dst
//   backward-weights: src, diff_dst -> [reorder] -> primitive -> [reorder] -> weight.grad,
//   bias.grad backward-data:    weights, diff_dst -> [reorder] -> primitive -> [reorder] ->
//   diff_src
// Weight gradients are computed before the input gradient, so they are ready as early as possible.
//
// In bf16 (precision.h) src, dst, the gradients between layers and the weights the primitives read
// are bf16; the parameters (master weights) and their gradients stay f32 in the same layout, and
// the forward pass starts by converting the master weights into the primitive's bf16 copy.
#pragma once

#include "core/layer.h"

namespace convoy {

class WeightedLayer : public Layer {
 protected:
  WeightedLayer(std::string name, bool has_bias) : Layer(std::move(name)), has_bias_(has_bias) {}

  // Binds the forward primitive: reorders src if needed, allocates dst and the parameters
  // ("weight" with `weight_dims`, "bias" of `outputs` elements). fan_in/fan_out feed the
  // initialiser. When the primitive's weights have other dims than `weight_dims` (a dense layer
  // reading its input flattened), the weight is kept in the primitive's dims, with `weight_dims`
  // as its logical shape (Parameter::shape).
  void bind_forward(BuildContext& ctx, const Tensor& src, const dnnl::primitive_desc& fwd,
                    const Dims& weight_dims, int64_t outputs, int64_t fan_in, int64_t fan_out);
  // Binds backward-weights and, when `bwd_data` is non-null, backward-data.
  void bind_backward(BuildContext& ctx, const Tensor& diff_dst,
                     const dnnl::primitive_desc& bwd_weights, const dnnl::primitive_desc* bwd_data);

  bool has_bias() const { return has_bias_; }

 private:
  Parameter& weight() { return parameters_[0]; }
  Parameter& bias() { return parameters_[1]; }

  bool has_bias_;
  dnnl::memory::desc src_in_desc_;  // the layout the previous layer gave us
  dnnl::memory src_;                // src in the forward primitive's layout
  dnnl::memory weight_compute_;     // the weights as the primitive reads them (bf16: a copy)
};

}  // namespace convoy
