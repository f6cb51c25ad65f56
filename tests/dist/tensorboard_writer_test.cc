// TensorBoard's framing from the bytes up: CRC-32C against the standard check values, and one
// record's layout (tests/dist/tensorboard_events_test.py reads whole files with an independent
// reader).
#include "dist/tensorboard_writer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/crc32.h"

namespace convoy {
namespace {

TEST(TensorBoard, Crc32cMatchesTheStandardCheckValues) {
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);    // RFC 3720, B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62a8ab43u);  // RFC 3720, B.4
  EXPECT_EQ(crc32c("", 0), 0u);
  EXPECT_EQ(crc32c("56789", crc32c("1234")), crc32c("123456789"));  // in pieces
}

TEST(TensorBoard, ARecordIsLengthCrcDataCrc) {
  const std::string data = "hello";
  const std::string r = TensorBoardWriter::record(data);
  ASSERT_EQ(r.size(), 8 + 4 + data.size() + 4);
  uint64_t length = 0;
  std::memcpy(&length, r.data(), 8);  // little-endian, as this machine
  EXPECT_EQ(length, data.size());
  const auto masked = [](std::string_view bytes) {
    const uint32_t c = crc32c(bytes);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
  };
  uint32_t length_crc = 0, data_crc = 0;
  std::memcpy(&length_crc, r.data() + 8, 4);
  std::memcpy(&data_crc, r.data() + 12 + data.size(), 4);
  EXPECT_EQ(length_crc, masked(r.substr(0, 8)));
  EXPECT_EQ(r.substr(12, data.size()), data);
  EXPECT_EQ(data_crc, masked(data));
}

}  // namespace
}  // namespace convoy
