// Flatten: [N, C, spatial...] -> [N, C * prod(spatial)] in row-major (C, spatial...) order, as
// NumPy's reshape or PyTorch's flatten would. A plain input is reinterpreted in place; a blocked
// one is reordered to plain first. (Dense flattens implicitly; Flatten is for models that want
// the 2-D shape explicitly, for example before an activation whose output feeds Dense.)
#pragma once

#include "core/layer.h"

namespace convoy {

class Flatten : public Layer {
 public:
  using Layer::Layer;

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;

 private:
  dnnl::memory::desc src_desc_;
  dnnl::memory keep_alive_;  // owns the buffer dst_ views when the input had to be reordered
};

}  // namespace convoy
