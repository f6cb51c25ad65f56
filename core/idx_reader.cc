#include "core/idx_reader.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace convoy {

namespace {

// A file read through zlib (gzip or plain), a requested number of bytes at a time.
class GzipReader {
 public:
  explicit GzipReader(const std::string& path)
      : path_(path), file_(gzopen(path.c_str(), "rb"), gzclose) {
    if (file_ == nullptr) {
      throw Error::from_errno(errno, fmt::format("'{}': cannot open", path));
    }
    gzbuffer(file_.get(), 1 << 20);
  }

  // Up to `n` bytes appended to `out`; fewer only at the end of the data.
  void read(size_t n, std::vector<uint8_t>& out) {
    constexpr size_t kChunk = 1 << 20;
    while (n > 0) {
      const size_t want = std::min(n, kChunk);
      const size_t used = out.size();
      out.resize(used + want);
      const int got = gzread(file_.get(), out.data() + used, static_cast<unsigned>(want));
      if (got < 0) {
        int code = 0;
        throw Error::corruption(
            fmt::format("'{}': corrupt gzip stream ({})", path_, gzerror(file_.get(), &code)));
      }
      out.resize(used + static_cast<size_t>(got));
      if (static_cast<size_t>(got) < want) break;
      n -= want;
    }
  }

  // Checks that the stream ended cleanly (a gzip stream cut short is reported here).
  void finish() {
    int code = 0;
    const char* what = gzerror(file_.get(), &code);
    if (code != Z_OK) {
      throw Error::corruption(
          fmt::format("'{}': truncated or corrupt gzip stream ({})", path_, what));
    }
    // gzclose reports a stream that ended before its trailer as Z_BUF_ERROR.
    if (gzclose(file_.release()) != Z_OK) {
      throw Error::corruption(fmt::format("'{}': truncated gzip stream", path_));
    }
  }

 private:
  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
};

uint32_t be32(const std::vector<uint8_t>& bytes, size_t at) {
  return uint32_t{bytes[at]} << 24 | uint32_t{bytes[at + 1]} << 16 | uint32_t{bytes[at + 2]} << 8 |
         uint32_t{bytes[at + 3]};
}

}  // namespace

IdxArray read_idx(const std::string& path, uint32_t expected_magic) {
  GzipReader file(path);
  std::vector<uint8_t> header;
  file.read(4, header);
  if (header.size() < 4) {
    throw Error::corruption(
        fmt::format("'{}': too short for an IDX file ({} bytes)", path, header.size()));
  }
  const uint32_t magic = be32(header, 0);
  if (magic != expected_magic) {
    throw Error::invalid_input(
        fmt::format("'{}': wrong IDX magic {} (expected {}, an IDX {} file)", path, magic,
                    expected_magic, expected_magic == kIdxImagesMagic ? "images" : "labels"));
  }
  const size_t rank = magic & 0xff;
  file.read(4 * rank, header);
  if (header.size() < 4 + 4 * rank) {
    throw Error::corruption(fmt::format("'{}': truncated IDX header", path));
  }
  IdxArray array;
  uint64_t expected = 1;
  for (size_t i = 0; i < rank; ++i) {
    array.dims.push_back(be32(header, 4 + 4 * i));
    // Each extent is below 2^32, so the product stays exact while it is at most the limit.
    expected *= static_cast<uint64_t>(array.dims.back());
    if (expected > kMaxIdxDataBytes) {
      throw Error::limit_exceeded(fmt::format(
          "'{}': the IDX header promises more than {} GiB of data", path, kMaxIdxDataBytes >> 30));
    }
  }
  // One byte more than promised, to tell an oversized file from an exact one.
  file.read(expected + 1, array.data);
  const uint64_t actual = array.data.size();
  if (actual < expected) file.finish();  // a gzip stream cut short is the better explanation
  if (actual != expected) {
    throw Error::corruption(
        fmt::format("'{}': {} IDX file: the header promises {} data bytes, found {}", path,
                    actual < expected ? "truncated" : "oversized", expected,
                    actual < expected ? fmt::format("{}", actual) : "more"));
  }
  file.finish();
  return array;
}

}  // namespace convoy
