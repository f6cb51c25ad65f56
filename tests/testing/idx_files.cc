#include "testing/idx_files.h"

#include <fstream>

#include "core/idx_reader.h"
#include "testing/temp_dir.h"

namespace convoy::testing {

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint8_t fill_base) {
  std::string s = be32(kIdxImagesMagic) + be32(count) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) {
    s += static_cast<char>(fill_base + i % 251);
  }
  return s;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string s = be32(kIdxLabelsMagic) + be32(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) s += static_cast<char>(l);
  return s;
}

void write_mnist_dir(const std::string& dir, uint32_t train, uint32_t test, uint32_t rows,
                     uint32_t cols) {
  auto labels = [](uint32_t n) {
    std::vector<uint8_t> l(n);
    for (uint32_t i = 0; i < n; ++i) l[i] = static_cast<uint8_t>(i % 10);
    return l;
  };
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << gzip(bytes);
  };
  write("train-images-idx3-ubyte.gz", idx_images(train, rows, cols));
  write("train-labels-idx1-ubyte.gz", idx_labels(labels(train)));
  write("t10k-images-idx3-ubyte.gz", idx_images(test, rows, cols, 7));
  write("t10k-labels-idx1-ubyte.gz", idx_labels(labels(test)));
}

}  // namespace convoy::testing
