// LayerHarness: one layer built alone for a fixed input, driven through plain host vectors.
//
// The layer is created from a LayerSpec in protobuf text through the registry, exactly as a model
// would create it. The input can be given in a blocked layout (for example nChw8c) to exercise
// the reorders a layer inserts when its input is not what its primitive wants.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/layer.h"
#include "core/shape.h"

namespace convoy::testing {

class LayerHarness {
 public:
  // `layer_text`: e.g. R"(type: "Conv2D" conv { filters: 2 kernel: 3 })".
  LayerHarness(const std::string& layer_text, const Dims& src_dims,
               std::optional<dnnl::memory::format_tag> src_layout = std::nullopt);

  Layer& layer() { return *layer_; }
  Dims dst_dims() const { return layer_->dst().shape(); }

  void set_src(std::span<const float> plain);
  std::vector<float> forward();  // plain dst
  // Runs backward with the given plain diff_dst.
  void backward(std::span<const float> diff_dst_plain);
  std::vector<float> diff_src() const { return layer_->diff_src().to_plain(); }

  // Parameter `i` (weight 0, bias 1) in plain layout.
  std::vector<float> param(size_t i) { return layer_->parameters()[i].value.to_plain(); }
  void set_param(size_t i, std::span<const float> plain);
  std::vector<float> grad(size_t i) { return layer_->parameters()[i].grad.to_plain(); }

  // Evaluation mode (dropout off, batch norm on running statistics).
  void set_evaluating(bool evaluating) { layer_->set_evaluating(evaluating); }
  // One key per batch row: what dropout draws its mask from (all 0 unless set).
  std::span<uint64_t> row_keys() { return ctx_->row_keys(); }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unique_ptr<BuildContext> ctx_;
  std::unique_ptr<Layer> layer_;
  Tensor src_, diff_dst_;
};

// Deterministic pseudo-random values in [lo, hi).
std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f);
// n distinct values with |v| >= 0.1 and at least 0.025 between any two, shuffled: no ReLU kink
// or max-pool tie within a finite-difference step of 1e-2. (Magnitudes grow to 0.1 + 0.0125 n.)
std::vector<float> well_separated_values(size_t n, uint64_t seed);

}  // namespace convoy::testing
