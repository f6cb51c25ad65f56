// Dense: fully connected layer (inner product) with optional bias, on oneDNN's inner_product
// primitives. An input with spatial extent is flattened implicitly, like Caffe's InnerProduct: the
// weight has shape [units, channels, spatial...], so oneDNN can read the input in its blocked
// layout without a reorder. Layers in the spec: `type: "Dense" dense { units: 256 }`.
#pragma once

#include "core/shape.h"
#include "core/weighted_layer.h"
#include "proto/model.pb.h"

namespace convoy {

struct DenseConfig {
  int64_t units = 0;
  bool bias = true;

  static DenseConfig from_spec(const pb::LayerSpec& spec, const std::string& where);
};

class Dense : public WeightedLayer {
 public:
  Dense(std::string name, DenseConfig config)
      : WeightedLayer(std::move(name), config.bias), config_(config) {}

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;

 private:
  DenseConfig config_;
  Dims src_dims_, weight_dims_, dst_dims_;
  dnnl::inner_product_forward::primitive_desc forward_pd_;
};

}  // namespace convoy
