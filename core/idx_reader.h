// IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, a type
// byte, the number of dimensions, then one uint32 per dimension) followed by the data. Files may
// be gzip-compressed or plain; zlib reads both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// The IDX magic numbers convoy reads: unsigned bytes with 3 dimensions (images) or 1 (labels).
inline constexpr uint32_t kIdxImagesMagic = 2051;
inline constexpr uint32_t kIdxLabelsMagic = 2049;

// Reads the whole file and checks it: the magic must equal `expected_magic`, and the data must be
// exactly as long as the header says. Throws Error naming `path` otherwise (also for missing
// files and truncated or corrupt gzip streams).
IdxArray read_idx(const std::string& path, uint32_t expected_magic);

// Reads a whole file, decompressing it when it is gzip (zlib reads plain files unchanged).
// Throws Error naming `path` when it cannot be opened or the gzip stream is damaged.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

}  // namespace convoy
