// Conv: convolution over 1, 2 or 3 spatial dimensions (Conv1D, Conv2D, Conv3D) with optional bias,
// on oneDNN's convolution_forward / convolution_backward_data / convolution_backward_weights.
// Layers in the spec: `type: "Conv2D" conv { filters: 32 kernel: 3 stride: 1 pad: 1 }`.
#pragma once

#include "core/shape.h"
#include "core/weighted_layer.h"
#include "proto/model.pb.h"

namespace convoy {

struct ConvConfig {
  int64_t filters = 0;
  Window window;
  bool bias = true;

  // Reads and checks `spec.conv()` for an input of shape `in`; throws Error naming `where`.
  static ConvConfig from_spec(const pb::LayerSpec& spec, const SampleShape& in,
                              const std::string& where);
  // The output shape for `in`; throws Error when an extent would be zero or negative.
  SampleShape output_shape(const SampleShape& in, const std::string& where) const;
};

class Conv : public WeightedLayer {
 public:
  Conv(std::string name, ConvConfig config)
      : WeightedLayer(std::move(name), config.bias), config_(std::move(config)) {}

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;

 private:
  ConvConfig config_;
  Dims src_dims_, weight_dims_, dst_dims_, padding_r_;
  dnnl::convolution_forward::primitive_desc forward_pd_;
};

}  // namespace convoy
