// Dense: fully connected layer (inner product) with optional bias, on oneDNN's inner_product
// primitives. An input with spatial extent is flattened implicitly, like Caffe's InnerProduct: the
// weight has shape [units, channels, spatial...], so oneDNN can read the input in its blocked
// layout without a reorder. In bf16 such an input is reordered to plain and read as [batch,
// features] instead: oneDNN 2.6 has AMX kernels for 2-D bf16 inner products only (its 4-D bf16
// path is a slow gemm). The weight is then stored as [units, features] (the same row-major order),
// and checkpoints still give it its [units, channels, spatial...] shape (Parameter::shape).
// Layers in the spec: `type: "Dense" dense { units: 256 }`.
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
  // Reading a multi-dimensional input as 2-D (bf16): its desc, and the plain copy viewed as 2-D.
  bool flattened_ = false;
  dnnl::memory::desc unflat_desc_;
  dnnl::memory flat_input_;
  Tensor flat_diff_src_;  // the 2-D input gradient, owner of the buffer diff_src_ is made from
};

}  // namespace convoy
