#include "core/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace convoy {

Dataset Dataset::head(int64_t n) const {
  Dataset d;
  d.name = name;
  d.shape = shape;
  d.class_names = class_names;
  n = std::min(n, count());
  const int64_t elements = n * shape.elements();
  if (!pixels.empty()) {
    d.pixels.assign(pixels.begin(), pixels.begin() + elements);
    d.pixel_values = pixel_values;
  } else {
    d.samples.assign(samples.begin(), samples.begin() + elements);
  }
  d.labels.assign(labels.begin(), labels.begin() + n);
  return d;
}

void Dataset::set_pixels(std::vector<uint8_t> bytes, std::vector<std::array<float, 256>> values) {
  CONVOY_CHECK(values.size() == 1 || values.size() == static_cast<size_t>(shape.channels));
  pixels = std::move(bytes);
  pixel_values = std::move(values);
  samples.clear();
}

void Dataset::copy_sample(int64_t i, std::span<float> out) const {
  const auto n = static_cast<size_t>(shape.elements());
  CONVOY_CHECK(out.size() == n && i >= 0 && i < count());
  const size_t first = static_cast<size_t>(i) * n;
  if (pixels.empty()) {
    std::copy_n(samples.data() + first, n, out.data());
    return;
  }
  const uint8_t* bytes = pixels.data() + first;
  const size_t per_channel = n / static_cast<size_t>(shape.channels);
  for (size_t c = 0; c < static_cast<size_t>(shape.channels); ++c) {
    const std::array<float, 256>& value = pixel_values[pixel_values.size() == 1 ? 0 : c];
    for (size_t k = c * per_channel; k < (c + 1) * per_channel; ++k) out[k] = value[bytes[k]];
  }
}

std::vector<float> Dataset::sample(int64_t i) const {
  std::vector<float> values(static_cast<size_t>(shape.elements()));
  copy_sample(i, values);
  return values;
}

std::vector<std::string> class_names_for(const std::string& dataset) {
  if (dataset == "fashion-mnist") {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  if (dataset == "cifar10") {
    return {"airplane", "automobile", "bird",  "cat",  "deer",
            "dog",      "frog",       "horse", "ship", "truck"};
  }
  return numbered_class_names(10);
}

std::vector<std::string> numbered_class_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

void check_data_directory(const std::string& dir) {
  if (std::filesystem::is_directory(dir)) return;
  if (std::filesystem::exists(dir)) {
    throw Error::invalid_input(fmt::format("'{}' is not a directory", dir));
  }
  throw Error::invalid_input(fmt::format("data directory '{}' does not exist", dir));
}

}  // namespace convoy
