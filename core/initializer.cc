#include "core/initializer.h"

#include <cmath>

#include "core/error.h"
#include "core/random.h"

namespace convoy {

pb::Init resolve_init(const pb::ModelSpec& spec, int index) {
  const pb::LayerSpec& layer = spec.layer(index);
  const pb::Init chosen = layer.has_conv() ? layer.conv().init() : layer.dense().init();
  if (chosen != pb::INIT_AUTO) return chosen;
  // The first activation after the layer decides (layers in between, like pooling, do not).
  for (int i = index + 1; i < spec.layer_size(); ++i) {
    const std::string& type = spec.layer(i).type();
    if (type == "ReLU" || type == "LeakyReLU" || type == "ELU") return pb::INIT_HE;
    if (type == "SELU") return pb::INIT_LECUN;
    if (type == "Sigmoid" || type == "Tanh") return pb::INIT_XAVIER;
    if (spec.layer(i).has_conv() || spec.layer(i).has_dense()) break;  // the next weighted layer
  }
  return pb::INIT_XAVIER;
}

std::vector<float> draw_weights(pb::Init init, int64_t count, int64_t fan_in, int64_t fan_out,
                                uint64_t seed) {
  CONVOY_CHECK(fan_in > 0 && fan_out > 0);
  Rng rng(seed);
  std::vector<float> values(static_cast<size_t>(count));
  switch (init) {
    case pb::INIT_HE:
    case pb::INIT_LECUN: {
      const double stddev = std::sqrt((init == pb::INIT_HE ? 2.0 : 1.0) / double(fan_in));
      for (float& v : values) v = static_cast<float>(rng.normal() * stddev);
      break;
    }
    default: {
      const double limit = std::sqrt(6.0 / double(fan_in + fan_out));
      for (float& v : values) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * limit);
      break;
    }
  }
  return values;
}

}  // namespace convoy
