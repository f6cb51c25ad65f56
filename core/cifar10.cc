#include "core/cifar10.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace convoy {

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;
constexpr int64_t kRecord = 1 + kPixels;

void append_file(const std::filesystem::path& path, Dataset& d) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error::invalid_input(fmt::format("'{}' is missing", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % kRecord != 0) {
    throw Error::invalid_input(
        fmt::format("'{}': {} bytes is not a whole number of {}-byte CIFAR-10 records",
                    path.string(), bytes.size(), kRecord));
  }
  const auto records = static_cast<int64_t>(bytes.size()) / kRecord;
  d.pixels.reserve(d.pixels.size() + static_cast<size_t>(records * kPixels));
  for (int64_t r = 0; r < records; ++r) {
    const char* record = bytes.data() + r * kRecord;
    const auto label = static_cast<unsigned char>(record[0]);
    if (label >= 10) {
      throw Error::invalid_input(
          fmt::format("'{}': record {} has label {}, not below 10", path.string(), r, label));
    }
    d.labels.push_back(label);
    d.pixels.insert(d.pixels.end(), record + 1, record + kRecord);
  }
}

// Each channel's value of every byte: scaled to [0, 1], then normalised with the channel's
// mean and standard deviation.
std::vector<std::array<float, 256>> pixel_values() {
  std::vector<std::array<float, 256>> values(3);
  for (size_t c = 0; c < 3; ++c) {
    for (size_t v = 0; v < 256; ++v) {
      const float p = static_cast<float>(v) / 255.f;
      values[c][v] = (p - kCifar10Mean[c]) / kCifar10Std[c];
    }
  }
  return values;
}

}  // namespace

Dataset load_cifar10(const std::string& dir, Split split) {
  check_data_directory(dir);
  Dataset d;
  d.name = "cifar10";
  d.shape = {3, {32, 32}};
  d.class_names = class_names_for("cifar10");
  if (split == Split::kTrain) {
    for (int i = 1; i <= 5; ++i) {
      append_file(std::filesystem::path(dir) / fmt::format("data_batch_{}.bin", i), d);
    }
  } else {
    append_file(std::filesystem::path(dir) / "test_batch.bin", d);
  }
  d.set_pixels(std::move(d.pixels), pixel_values());
  return d;
}

}  // namespace convoy
