#include "core/mnist.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "core/idx_reader.h"

namespace convoy {

namespace {

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const std::string& candidate : {stem + ".gz", stem}) {
    const std::filesystem::path path = std::filesystem::path(dir) / candidate;
    if (std::filesystem::is_regular_file(path)) return path.string();
  }
  throw Error::invalid_input(fmt::format("'{}' has neither {} nor {}.gz", dir, stem, stem));
}

}  // namespace

Dataset load_mnist(const std::string& dir, const std::string& dataset, Split split) {
  check_data_directory(dir);
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path, kIdxImagesMagic);
  const IdxArray labels = read_idx(labels_path, kIdxLabelsMagic);
  if (images.dims[0] != labels.dims[0]) {
    throw Error::invalid_input(fmt::format("'{}' holds {} images but '{}' holds {} labels",
                                           images_path, images.dims[0], labels_path,
                                           labels.dims[0]));
  }
  Dataset d;
  d.name = dataset;
  d.shape = {1, {images.dims[1], images.dims[2]}};
  d.class_names = class_names_for(dataset);
  std::array<float, 256> value{};
  for (size_t v = 0; v < value.size(); ++v) value[v] = static_cast<float>(v) / 255.0f;
  d.set_pixels(std::move(images.data), {value});
  d.labels.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= d.class_names.size()) {
      throw Error::invalid_input(
          fmt::format("'{}': label {} of sample {} is not below the number of "
                      "classes ({})",
                      labels_path, labels.data[i], i, d.class_names.size()));
    }
    d.labels[i] = labels.data[i];
  }
  return d;
}

}  // namespace convoy
