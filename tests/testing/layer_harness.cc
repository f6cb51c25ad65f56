#include "testing/layer_harness.h"

#include <google/protobuf/text_format.h>

#include <stdexcept>

#include "core/layer_registry.h"
#include "core/random.h"
#include "core/shuffle.h"

namespace convoy::testing {

LayerHarness::LayerHarness(const std::string& layer_text, const Dims& src_dims,
                           std::optional<dnnl::memory::format_tag> src_layout)
    : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
  pb::LayerSpec spec;
  if (!google::protobuf::TextFormat::ParseFromString(layer_text, &spec)) {
    throw std::runtime_error("bad layer text: " + layer_text);
  }
  const SampleShape in{src_dims[1], {src_dims.begin() + 2, src_dims.end()}};
  const LayerType* type = find_layer_type(spec.type());
  if (type == nullptr) throw std::runtime_error("unknown layer type " + spec.type());
  type->infer(spec, in, "test layer");
  layer_ = type->create(spec, in, "layer");

  ctx_ = std::make_unique<BuildContext>(engine_, /*training=*/true);
  ctx_->set_batch_size(src_dims[0]);
  const dnnl::memory::desc src_desc =
      src_layout ? dnnl::memory::desc(src_dims, dnnl::memory::data_type::f32, *src_layout)
                 : plain_desc(src_dims);
  src_ = Tensor(src_desc, engine_);
  layer_->build_forward(*ctx_, src_);
  diff_dst_ = Tensor(layer_->dst().desc(), engine_);
  layer_->build_backward(*ctx_, diff_dst_, /*need_diff_src=*/true);
  ctx_->scratchpad().allocate();
}

void LayerHarness::set_src(std::span<const float> plain) {
  src_.copy_from_plain(plain);
}

std::vector<float> LayerHarness::forward() {
  layer_->forward(stream_);
  stream_.wait();
  return layer_->dst().to_plain();
}

void LayerHarness::backward(std::span<const float> diff_dst_plain) {
  diff_dst_.copy_from_plain(diff_dst_plain);
  layer_->backward(stream_);
  stream_.wait();
}

void LayerHarness::set_param(size_t i, std::span<const float> plain) {
  layer_->parameters()[i].value.copy_from_plain(plain);
}

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = lo + (hi - lo) * static_cast<float>(rng.uniform());
  return v;
}

std::vector<float> well_separated_values(size_t n, uint64_t seed) {
  // Magnitudes 0.1, 0.1125, 0.125, ... with alternating signs (so values of one sign are 0.025
  // apart), in a seeded random order.
  std::vector<float> v(n);
  const std::vector<int64_t> order = epoch_permutation(static_cast<int64_t>(n), seed, 0);
  for (size_t i = 0; i < n; ++i) {
    const float magnitude = 0.1f + 0.0125f * static_cast<float>(i);
    v[static_cast<size_t>(order[i])] = (i % 2 == 0 ? 1.f : -1.f) * magnitude;
  }
  return v;
}

}  // namespace convoy::testing
