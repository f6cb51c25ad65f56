// NumPy .npz archives: a zip file of .npy arrays (format version 1.0), readable by numpy.load.
// The zip container comes from libzip; the .npy header is a few lines, written here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace convoy {

struct NpyArray {
  std::string name;  // entry name without ".npy"
  std::vector<int64_t> shape;
  std::span<const float> data;  // row-major, product(shape) values
};

// The .npy bytes (header + little-endian float32 data) of one array.
std::string npy_bytes(const NpyArray& array);

// Writes `arrays` to `path` atomically. Throws Error naming `path` on failure.
void write_npz(const std::string& path, const std::vector<NpyArray>& arrays);

}  // namespace convoy
