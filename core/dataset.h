// Dataset: labelled samples held in memory, ready to be batched.
#pragma once

#include <array>
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
  // Samples are held in their file's type, count x shape.elements() in plain layout, and become
  // floats a batch at a time (copy_sample, on the loader's thread): image bytes take a quarter of
  // the memory their floats would. Exactly one of `pixels` and `samples` is filled.
  std::vector<uint8_t> pixels;  // image files (IDX, CIFAR-10): the bytes as stored
  // For `pixels`: each channel's value of every byte (the data set's scaling and normalisation,
  // computed once, so a sample's floats do not depend on when or where it is converted).
  std::vector<std::array<float, 256>> pixel_values;
  std::vector<float> samples;   // data sets of floats (.npy)
  std::vector<int32_t> labels;  // count values in [0, class_names.size())

  int64_t count() const { return static_cast<int64_t>(labels.size()); }
  int num_classes() const { return static_cast<int>(class_names.size()); }
  // Writes sample `i`'s shape.elements() values to `out`.
  void copy_sample(int64_t i, std::span<float> out) const;
  // Sample `i` as floats (for tests and setup; batches use copy_sample).
  std::vector<float> sample(int64_t i) const;
  // Stores image bytes with `values` (one table per channel, or one for all).
  void set_pixels(std::vector<uint8_t> bytes, std::vector<std::array<float, 256>> values);
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
