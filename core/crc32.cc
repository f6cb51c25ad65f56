#include "core/crc32.h"

#include <zlib.h>

#include <algorithm>

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

}  // namespace convoy
