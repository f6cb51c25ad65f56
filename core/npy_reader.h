// NumPy .npy files (format versions 1, 2 and 3), read by hand: no Debian C++ library reads them.
// Only what convoy needs: little-endian (or byte-sized) uint8, float32 and integer arrays in C
// order. Every other case is refused with a one-line Error naming the file: an unsupported
// dtype, Fortran order, a malformed or truncated header, a body shorter or longer than the shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct NpyArray {
  std::string dtype;              // as in the header, e.g. "<f4", "|u1", "<i8"
  std::vector<int64_t> shape;     // C order
  std::vector<float> values;      // float arrays (f4, u1 converted as they are)
  std::vector<int64_t> integers;  // integer arrays (i1..i8, u1..u8)
  int64_t count() const;          // elements: the product of shape
};

// `want` picks the kind of data: kFloat accepts "<f4" and "|u1" (scaled by `uint8_scale`), kInteger
// accepts signed and unsigned integers of 1 to 8 bytes.
enum class NpyKind { kFloat, kInteger };
// Longer headers are refused before they are read, as NumPy's own reader does by default.
inline constexpr size_t kMaxNpyHeaderBytes = 10000;
NpyArray read_npy(const std::string& path, NpyKind want, float uint8_scale = 1.f / 255.f);

}  // namespace convoy
