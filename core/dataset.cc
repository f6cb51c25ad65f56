#include "dataset.h"

#include <algorithm>

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
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

}  // namespace convoy
