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

// The most data one IDX file may hold (4 GiB: 70 times Fashion-MNIST's training images).
inline constexpr uint64_t kMaxIdxDataBytes = uint64_t{4} << 30;

// Reads the file and checks it: the magic must equal `expected_magic`, the header's sizes must
// stay within kMaxIdxDataBytes, and the data must be exactly as long as the header says. The data
// is read as it decompresses, never past one byte beyond that length, so a small compressed file
// that expands to gigabytes ("gzip bomb") is refused once it is. Throws Error naming `path`
// otherwise (also for missing files and truncated or corrupt gzip streams).
IdxArray read_idx(const std::string& path, uint32_t expected_magic);

}  // namespace convoy
