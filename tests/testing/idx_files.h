// Writing small IDX files and MNIST-style directories for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy::testing {

std::string be32(uint32_t v);
// An IDX images file: `count` images of rows x cols; pixel i is (fill_base + i % 251) mod 256.
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint8_t fill_base = 0);
std::string idx_labels(const std::vector<uint8_t>& labels);

// Writes train/t10k images and labels (gzip-compressed) into `dir`, labels cycling 0..9.
void write_mnist_dir(const std::string& dir, uint32_t train, uint32_t test, uint32_t rows = 28,
                     uint32_t cols = 28);

}  // namespace convoy::testing
