#include "core/augmentation.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/random.h"

namespace convoy {

std::string Augmentation::str() const {
  if (!enabled()) return "none";
  if (crop_padding > 0 && flip) return fmt::format("crop {} + flip", crop_padding);
  return crop_padding > 0 ? fmt::format("crop {}", crop_padding) : "flip";
}

Augmentation Augmentation::from_spec(const pb::ModelSpec& spec, const std::string& source) {
  Augmentation a;
  a.crop_padding = spec.augment().crop_padding();
  a.flip = spec.augment().horizontal_flip();
  if (a.crop_padding < 0) {
    throw Error::invalid_input(
        fmt::format("{}: augment.crop_padding must be >= 0, got {}", source, a.crop_padding));
  }
  return a;
}

void Augmentation::apply(std::span<float> sample, const SampleShape& shape, uint64_t key,
                         std::span<float> scratch) const {
  if (!enabled() || shape.spatial.empty()) return;
  const size_t rank = shape.spatial.size();
  // At most 3 spatial dimensions (model_spec.cc): fixed-size arrays, no allocation.
  int64_t extent[3] = {1, 1, 1}, shift[3] = {0, 0, 0};
  for (size_t d = 0; d < rank; ++d) extent[3 - rank + d] = shape.spatial[d];
  uint64_t draw = 0;
  for (size_t d = 0; d < rank; ++d) {
    const uint64_t choices = static_cast<uint64_t>(2 * crop_padding + 1);
    shift[3 - rank + d] =
        static_cast<int64_t>(mix_seed(key, ++draw) % choices) - crop_padding;  // bias < 2^-58
  }
  const bool flipped = flip && (mix_seed(key, ++draw) & 1) != 0;

  const int64_t plane = extent[0] * extent[1] * extent[2];
  std::copy(sample.begin(), sample.end(), scratch.begin());
  for (int64_t c = 0; c < shape.channels; ++c) {
    const float* in = scratch.data() + c * plane;
    float* out = sample.data() + c * plane;
    for (int64_t z = 0; z < extent[0]; ++z)
      for (int64_t y = 0; y < extent[1]; ++y)
        for (int64_t x = 0; x < extent[2]; ++x) {
          // Output (z, y, x) shows input (z, y, x) + shift, read after the flip.
          const int64_t sz = z + shift[0], sy = y + shift[1];
          const int64_t sx = (flipped ? extent[2] - 1 - x : x) + shift[2];
          const bool inside =
              sz >= 0 && sz < extent[0] && sy >= 0 && sy < extent[1] && sx >= 0 && sx < extent[2];
          out[(z * extent[1] + y) * extent[2] + x] =
              inside ? in[(sz * extent[1] + sy) * extent[2] + sx] : 0.f;
        }
  }
}

void mirror_last_dimension(std::span<float> values, int64_t width) {
  CONVOY_CHECK(width > 0 && values.size() % static_cast<size_t>(width) == 0);
  for (size_t at = 0; at < values.size(); at += static_cast<size_t>(width)) {
    std::reverse(values.begin() + static_cast<std::ptrdiff_t>(at),
                 values.begin() + static_cast<std::ptrdiff_t>(at) + width);
  }
}

}  // namespace convoy
