// Dataset: labelled samples held in memory, ready to be batched.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/shape.h"

namespace convoy {

enum class Split { kTrain, kTest };

struct Dataset {
  std::string name;   // "fashion-mnist", "mnist"
  SampleShape shape;  // per sample, e.g. 1x28x28
  std::vector<std::string> class_names;
  std::vector<float> samples;   // count x shape.elements(), plain layout
  std::vector<int32_t> labels;  // count values in [0, class_names.size())

  int64_t count() const { return static_cast<int64_t>(labels.size()); }
  int num_classes() const { return static_cast<int>(class_names.size()); }
  std::span<const float> sample(int64_t i) const {
    const auto n = static_cast<size_t>(shape.elements());
    return {samples.data() + static_cast<size_t>(i) * n, n};
  }
  // The first `n` samples (all when n >= count()).
  Dataset head(int64_t n) const;
};

// Class names for a data set kind: Fashion-MNIST's and CIFAR-10's ten names, or "0".."9".
std::vector<std::string> class_names_for(const std::string& dataset);

// Throws Error (invalid input) unless `dir` is a directory: "does not exist", or "is not a
// directory" for a file.
void check_data_directory(const std::string& dir);
// "0", "1", ..., count - 1.
std::vector<std::string> numbered_class_names(int count);

}  // namespace convoy
