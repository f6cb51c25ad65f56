// CRC-32 (zlib's, the one gzip and zip use) of a byte string, and of several pieces in sequence;
// and CRC-32C (Castagnoli's polynomial, the one TFRecord files and iSCSI use).
#pragma once

#include <cstdint>
#include <string_view>

namespace convoy {

// crc32(b, crc32(a)) == crc32(a + b); the default start is the CRC of nothing.
uint32_t crc32(std::string_view bytes, uint32_t crc = 0);

// crc32c("123456789") == 0xe3069283 (the standard check value).
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);

}  // namespace convoy
