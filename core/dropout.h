// Dropout: inverted dropout. In training, each value is kept with probability 1 - rate and scaled
// by 1 / (1 - rate), or zeroed; evaluation passes values through unchanged. oneDNN has no dropout
// primitive, so the mask is drawn here, by hand-written ops (op.h).
//
// The mask of row r is a pure function of the row's key (Model::row_keys(), derived from the
// seed, the epoch and the sample's index in the data set), the layer's name and the element's
// position: a run is reproducible, and a sample gets the same mask whether it is trained by one
// process or another, so N processes still train the same model as one.
// Layers in the spec: `type: "Dropout" dropout { rate: 0.5 }`.
#pragma once

#include "core/aligned_buffer.h"
#include "core/layer.h"
#include "proto/model.pb.h"

namespace convoy {

// Reads and checks dropout.rate; throws Error naming `where`.
float dropout_rate(const pb::LayerSpec& spec, const std::string& where);

class Dropout : public Layer {
 public:
  Dropout(std::string name, float rate);

  void build_forward(BuildContext& ctx, const Tensor& src) override;
  void build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) override;

  // The mask's value (0 or 1 / (1 - rate)) for element `index` of a row with key `row_key`.
  float mask_value(uint64_t row_key, uint64_t index) const;

 private:
  void draw_and_apply();

  float rate_;
  uint64_t salt_;  // from the layer's name: layers draw independent masks
  std::span<const uint64_t> row_keys_;
  int64_t rows_ = 0, row_size_ = 0;
  dnnl::memory src_plain_;
  AlignedBuffer<float> mask_;
  dnnl::memory::desc src_desc_;
};

}  // namespace convoy
