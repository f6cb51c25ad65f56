// Weight initialisation schemes, resolved from the spec (INIT_AUTO picks by the activation that
// follows the layer). Values are drawn in plain row-major order from Rng(seed), so a seed gives
// the same weights whatever layout oneDNN chose to store them in.
#pragma once

#include <cstdint>
#include <vector>

#include "proto/model.pb.h"

namespace convoy {

// The scheme for the weighted layer at `index` of `spec` (Conv or Dense).
pb::Init resolve_init(const pb::ModelSpec& spec, int index);

// `count` weights for a layer with the given fans.
std::vector<float> draw_weights(pb::Init init, int64_t count, int64_t fan_in, int64_t fan_out,
                                uint64_t seed);

}  // namespace convoy
