#include "core/npz_writer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zip.h>

#include <bit>
#include <cstring>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"

namespace convoy {

static_assert(std::endian::native == std::endian::little, "npy data is written little-endian");

std::string npy_bytes(const NpyArray& array) {
  std::string shape = fmt::format("{}", fmt::join(array.shape, ", "));
  if (array.shape.size() == 1) shape += ',';  // Python's one-element tuple: "(6,)"
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", shape);
  // Magic (6) + version (2) + header length (2) + header, padded with spaces and ended by a
  // newline so that the data starts on a 64-byte boundary.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size_bytes());
  return out;
}

void write_npz(const std::string& path, const std::vector<NpyArray>& arrays) {
  std::vector<std::string> entries;
  entries.reserve(arrays.size());
  for (const NpyArray& a : arrays) entries.push_back(npy_bytes(a));

  write_file_atomically_with(path, [&](const std::string& temp) {
    int code = 0;
    zip_t* archive = zip_open(temp.c_str(), ZIP_TRUNCATE, &code);
    if (archive == nullptr) {
      zip_error_t error;
      zip_error_init_with_code(&error, code);
      const std::string what = zip_error_strerror(&error);
      zip_error_fini(&error);
      throw Error::io(fmt::format("'{}': cannot write: {}", path, what));
    }
    auto fail = [&](const std::string& what) {
      zip_discard(archive);
      throw Error::io(fmt::format("'{}': cannot write: {}", path, what));
    };
    for (size_t i = 0; i < arrays.size(); ++i) {
      zip_source_t* source =
          zip_source_buffer(archive, entries[i].data(), entries[i].size(), /*freep=*/0);
      if (source == nullptr) fail(zip_strerror(archive));
      const zip_int64_t index = zip_file_add(archive, (arrays[i].name + ".npy").c_str(), source,
                                             ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
      if (index < 0) {
        zip_source_free(source);
        fail(zip_strerror(archive));
      }
      zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
    }
    if (zip_close(archive) != 0) fail(zip_strerror(archive));
  });
}

}  // namespace convoy
