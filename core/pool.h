// Pool: max or average pooling over 1, 2 or 3 spatial dimensions (MaxPool1D/2D/3D,
// AvgPool1D/2D/3D) on oneDNN's pooling primitives, except non-overlapping 2-D max pooling in a
// channel-innermost layout, which runs on WindowMaxPool (core/window_max_pool.h). Max pooling
// keeps the forward's argmax for its backward pass.
// Layers in the spec: `type: "MaxPool2D" pool { kernel: 2 }` (stride defaults to the kernel).
#pragma once

#include <optional>

#include "core/aligned_buffer.h"
#include "core/layer.h"
#include "core/shape.h"
#include "core/window_max_pool.h"
#include "proto/model.pb.h"

namespace convoy {

struct PoolConfig {
  dnnl::algorithm algorithm = dnnl::algorithm::pooling_max;
  Window window;

  static PoolConfig from_spec(const pb::LayerSpec& spec, dnnl::algorithm max_or_avg,
                              const SampleShape& in, const std::string& where);
  SampleShape output_shape(const SampleShape& in, const std::string& where) const;
};

class Pool : public Layer {
 public:
  Pool(std::string name, PoolConfig config) : Layer(std::move(name)), config_(std::move(config)) {}

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;
  void offer_following_relu() override { relu_offered_ = true; }
  bool applies_following_relu() const override { return relu_offered_ && window_max_.has_value(); }

 private:
  PoolConfig config_;
  bool relu_offered_ = false;
  // Non-overlapping 2-D max pooling runs on WindowMaxPool (and applies an offered ReLU); all
  // other pooling on oneDNN's primitives.
  std::optional<WindowMaxPool> window_max_;
  AlignedBuffer<uint8_t> argmax_;
  Dims padding_r_;
  dnnl::memory::desc src_desc_;
  dnnl::memory workspace_;
  dnnl::pooling_forward::primitive_desc forward_pd_;
};

}  // namespace convoy
