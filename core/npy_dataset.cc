#include "core/npy_dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "core/error.h"
#include "core/npy_reader.h"

namespace convoy {

Dataset load_npy_dataset(const std::string& dir, Split split, int classes) {
  check_data_directory(dir);
  const std::string prefix = split == Split::kTrain ? "train" : "test";
  const auto file = [&](const std::string& suffix) {
    const std::filesystem::path path = std::filesystem::path(dir) / (prefix + suffix);
    if (!std::filesystem::is_regular_file(path)) {
      throw Error::invalid_input(fmt::format("'{}' is missing", path.string()));
    }
    return path.string();
  };
  const std::string x_path = file("_x.npy"), y_path = file("_y.npy");
  NpyArray x = read_npy(x_path, NpyKind::kFloat);
  const NpyArray y = read_npy(y_path, NpyKind::kInteger);
  if (x.shape.size() < 3 || x.shape.size() > 5) {
    throw Error::invalid_input(
        fmt::format("'{}': shape ({}) is not N x C x L, N x C x H x W or N x C x D x H x W", x_path,
                    fmt::join(x.shape, ", ")));
  }
  if (y.shape.size() != 1) {
    throw Error::invalid_input(
        fmt::format("'{}': labels must be one-dimensional (N), got shape ({})", y_path,
                    fmt::join(y.shape, ", ")));
  }
  if (x.shape[0] != y.shape[0]) {
    throw Error::invalid_input(fmt::format("'{}' holds {} samples but '{}' holds {} labels", x_path,
                                           x.shape[0], y_path, y.shape[0]));
  }
  Dataset d;
  d.name = "npy";
  d.shape = {x.shape[1], {x.shape.begin() + 2, x.shape.end()}};
  d.class_names = numbered_class_names(classes);
  d.samples = std::move(x.values);
  d.labels.reserve(y.integers.size());
  for (size_t i = 0; i < y.integers.size(); ++i) {
    const int64_t label = y.integers[i];
    if (label < 0 || label >= classes) {
      throw Error::invalid_input(
          fmt::format("'{}': label {} of sample {} is not in [0, {}) (the model's classes)", y_path,
                      label, i, classes));
    }
    d.labels.push_back(static_cast<int32_t>(label));
  }
  return d;
}

}  // namespace convoy
