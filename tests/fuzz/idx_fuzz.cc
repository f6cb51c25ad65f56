// IDX files (MNIST, Fashion-MNIST), plain and gzip-compressed, through read_idx.
// The first byte chooses: bit 0 set, the rest is gzip-compressed here before it is read (so that
// mutations explore the IDX header and sizes behind a valid gzip stream); clear, the rest is read
// as it is (plain files, and corrupt or truncated gzip streams). Bit 1 picks the magic expected.
#include <zlib.h>

#include <cstdlib>

#include "core/idx_reader.h"
#include "fuzz_support.h"

namespace {

std::string gzip(std::string_view bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();
  }
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool compress = (data[0] & 1) != 0;
  const uint32_t magic = (data[0] & 2) != 0 ? convoy::kIdxLabelsMagic : convoy::kIdxImagesMagic;
  const std::string path =
      convoy::fuzz::write_scratch("input.idx", compress ? std::string_view(gzip(rest)) : rest);
  convoy::fuzz::refused_or_accepted([&] {
    const convoy::IdxArray array = convoy::read_idx(path, magic);
    uint64_t elements = 1;
    for (const int64_t d : array.dims) elements *= static_cast<uint64_t>(d);
    if (elements != array.data.size()) std::abort();  // accepted, but not what the header says
  });
  return 0;
}
