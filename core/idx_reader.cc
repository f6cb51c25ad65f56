#include "core/idx_reader.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace convoy {

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw Error::invalid_input(fmt::format("'{}': cannot open: {}", path, std::strerror(errno)));
  }
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(file, gzclose);
  gzbuffer(file, 1 << 20);
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    const size_t used = bytes.size();
    bytes.resize(used + kChunk);
    const int n = gzread(file, bytes.data() + used, static_cast<unsigned>(kChunk));
    if (n < 0) {
      int code = 0;
      const char* what = gzerror(file, &code);
      throw Error::invalid_input(fmt::format("'{}': corrupt gzip stream ({})", path, what));
    }
    bytes.resize(used + static_cast<size_t>(n));
    if (n == 0) break;
  }
  int code = 0;
  const char* what = gzerror(file, &code);
  if (code != Z_OK) {
    throw Error::invalid_input(
        fmt::format("'{}': truncated or corrupt gzip stream ({})", path, what));
  }
  // gzclose reports a stream that ended before its trailer as Z_BUF_ERROR.
  closer.release();
  if (gzclose(file) != Z_OK) {
    throw Error::invalid_input(fmt::format("'{}': truncated gzip stream", path));
  }
  return bytes;
}

IdxArray read_idx(const std::string& path, uint32_t expected_magic) {
  const std::vector<uint8_t> bytes = read_maybe_gzip(path);
  auto be32 = [&](size_t at) {
    return uint32_t{bytes[at]} << 24 | uint32_t{bytes[at + 1]} << 16 |
           uint32_t{bytes[at + 2]} << 8 | uint32_t{bytes[at + 3]};
  };
  if (bytes.size() < 4) {
    throw Error::invalid_input(
        fmt::format("'{}': too short for an IDX file ({} bytes)", path, bytes.size()));
  }
  const uint32_t magic = be32(0);
  if (magic != expected_magic) {
    throw Error::invalid_input(
        fmt::format("'{}': wrong IDX magic {} (expected {}, an IDX {} file)", path, magic,
                    expected_magic, expected_magic == kIdxImagesMagic ? "images" : "labels"));
  }
  const size_t rank = magic & 0xff;
  const size_t header = 4 + 4 * rank;
  if (bytes.size() < header) {
    throw Error::invalid_input(fmt::format("'{}': truncated IDX header", path));
  }
  IdxArray array;
  uint64_t expected = 1;
  for (size_t i = 0; i < rank; ++i) {
    array.dims.push_back(be32(4 + 4 * i));
    expected *= static_cast<uint64_t>(array.dims.back());
  }
  const uint64_t actual = bytes.size() - header;
  if (actual != expected) {
    throw Error::invalid_input(
        fmt::format("'{}': {} IDX file: the header promises {} data bytes, found {}", path,
                    actual < expected ? "truncated" : "oversized", expected, actual));
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

}  // namespace convoy
