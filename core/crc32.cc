#include "core/crc32.h"

#include <zlib.h>

#include <algorithm>
#include <array>

namespace convoy {

uint32_t crc32(std::string_view bytes, uint32_t crc) {
  uLong c = crc;
  // zlib takes uInt lengths: feed large inputs in pieces.
  for (size_t at = 0; at < bytes.size();) {
    const size_t n = std::min<size_t>(bytes.size() - at, size_t{1} << 30);
    c = ::crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + at), static_cast<uInt>(n));
    at += n;
  }
  return static_cast<uint32_t>(c);
}

// Written by hand: no library in Debian 12 offers CRC-32C to C++ (zlib has CRC-32 only; Google's
// crc32c and Abseil's crc are not packaged there). Bytewise with a table: TensorBoard events are
// small, speed does not matter here.
uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (const char b : bytes) crc = table[(crc ^ static_cast<uint8_t>(b)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace convoy
