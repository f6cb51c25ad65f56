#include "core/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace convoy {

Dataset Dataset::head(int64_t n) const {
  Dataset d{name, shape, class_names, {}, {}};
  n = std::min(n, count());
  d.samples.assign(samples.begin(), samples.begin() + n * shape.elements());
  d.labels.assign(labels.begin(), labels.begin() + n);
  return d;
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
