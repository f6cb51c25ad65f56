#include "core/npy_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/error.h"

namespace convoy {

int64_t NpyArray::count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error::invalid_input(fmt::format("'{}': {}", path, what));
}

// The value of `key` in the header's Python dict literal, e.g. 'descr': '<f4': a quoted string
// (quotes kept), True, False or a tuple "(...)". Scanned by hand: libstdc++'s std::regex recurses
// once per character it matches, so a long header could exhaust the stack.
std::string header_field(const std::string& header, const std::string& key,
                         const std::string& path) {
  constexpr const char* kSpace = " \t\n\r\f\v";
  for (const char quote : {'\'', '"'}) {
    const std::string name = quote + key + quote;
    for (size_t at = header.find(name); at != std::string::npos; at = header.find(name, at + 1)) {
      size_t i = header.find_first_not_of(kSpace, at + name.size());
      if (i == std::string::npos || header[i] != ':') continue;
      i = header.find_first_not_of(kSpace, i + 1);
      if (i == std::string::npos) continue;
      const char first = header[i];
      size_t end = std::string::npos;  // one past the value
      if (first == '\'' || first == '"') {
        const size_t close = header.find(first, i + 1);
        if (close != std::string::npos) end = close + 1;
      } else if (first == '(') {
        const size_t close = header.find(')', i + 1);
        if (close != std::string::npos) end = close + 1;
      } else {
        for (const std::string_view word : {"True", "False"}) {
          if (header.compare(i, word.size(), word) == 0) end = i + word.size();
        }
      }
      // A value ends the entry: "Falsey" or "'<f4'x" is not one.
      const size_t next = end == std::string::npos ? end : header.find_first_not_of(kSpace, end);
      if (end != std::string::npos &&
          (next == std::string::npos || header[next] == ',' || header[next] == '}')) {
        return header.substr(i, end - i);
      }
    }
  }
  fail(path, fmt::format("npy header has no '{}'", key));
}

std::vector<int64_t> parse_shape(const std::string& tuple, const std::string& path) {
  std::vector<int64_t> shape;
  std::string inner = tuple.substr(1, tuple.size() - 2);
  std::stringstream items(inner);
  std::string item;
  const auto malformed = [&] {
    fail(path, fmt::format("npy shape {}{} is malformed", tuple.substr(0, 64),
                           tuple.size() > 64 ? "..." : ""));
  };
  bool ended = false;  // after an empty item: "(5,)" ends with one, "(5,,3)" is malformed
  while (std::getline(items, item, ',')) {
    const size_t start = item.find_first_not_of(" \t");
    if (ended) malformed();
    if (start == std::string::npos) {
      ended = true;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str() + start, &end, 10);
    const size_t rest = item.find_first_not_of(" \t", static_cast<size_t>(end - item.c_str()));
    if (end == item.c_str() + start || v < 0 || errno == ERANGE || rest != std::string::npos) {
      malformed();
    }
    shape.push_back(v);
    if (shape.size() > 32) fail(path, "npy shape has more than 32 dimensions");
  }
  return shape;
}

template <typename T>
void convert(const char* bytes, int64_t n, std::vector<int64_t>& out) {
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, bytes + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    out[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }
}

}  // namespace

NpyArray read_npy(const std::string& path, NpyKind want, float uint8_scale) {
  // Read in parts: the prefix and the header first, whose sizes are checked before anything
  // large is allocated, then the body straight into the result.
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  const auto read_exactly = [&](char* out, size_t n) {
    in.read(out, static_cast<std::streamsize>(n));
    return static_cast<size_t>(in.gcount()) == n;
  };
  char prefix[12];
  if (!read_exactly(prefix, 10) || std::memcmp(prefix, "\x93NUMPY", 6) != 0) {
    fail(path, "not a NumPy .npy file (no \\x93NUMPY magic), or truncated");
  }
  const auto byte = [&](int i) {
    return static_cast<size_t>(static_cast<unsigned char>(prefix[i]));
  };
  const size_t major = byte(6), minor = byte(7);
  size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = byte(8) | byte(9) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (!read_exactly(prefix + 10, 2)) fail(path, "npy header is truncated");
    header_length = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    header_start = 12;
  }
  if (major < 1 || major > 3 || minor != 0) {
    fail(path,
         fmt::format("npy format version {}.{} is not supported (1.0, 2.0 or 3.0)", major, minor));
  }
  if (header_length > kMaxNpyHeaderBytes) {
    fail(path, fmt::format("npy header of {} bytes is longer than {} (NumPy's own limit)",
                           header_length, kMaxNpyHeaderBytes));
  }
  std::string header(header_length, '\0');
  if (!read_exactly(header.data(), header_length)) fail(path, "npy header is truncated");
  in.seekg(0, std::ios::end);
  const std::streamoff file_size = in.tellg();
  in.seekg(static_cast<std::streamoff>(header_start + header_length));
  if (file_size < 0 || !in) fail(path, "cannot read the npy body");

  NpyArray a;
  const std::string descr = header_field(header, "descr", path);
  a.dtype = descr.substr(1, descr.size() - 2);
  if (header_field(header, "fortran_order", path) != "False") {
    fail(path, "is in Fortran order; save it in C order (numpy.ascontiguousarray)");
  }
  a.shape = parse_shape(header_field(header, "shape", path), path);

  const std::string& t = a.dtype;
  const bool little_or_byte = t.size() == 3 && (t[0] == '<' || t[0] == '|');
  const char kind = little_or_byte ? t[1] : '?';
  const int size = little_or_byte ? t[2] - '0' : 0;
  const bool is_float = t == "<f4";
  const bool is_u8 = t == "|u1" || t == "<u1";
  const bool is_int =
      (kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8);
  if (want == NpyKind::kFloat ? !(is_float || is_u8) : !is_int) {
    const bool long_dtype = t.size() > 16;  // from the file: show a bounded part
    fail(path, fmt::format("dtype '{}{}' is not supported here (want {})", t.substr(0, 16),
                           long_dtype ? "..." : "",
                           want == NpyKind::kFloat ? "uint8 or float32" : "an integer type"));
  }
  const int element = is_float ? 4 : size;
  const auto body = static_cast<uint64_t>(file_size) - header_start - header_length;
  // The shape comes from the file: multiply without overflow (a shape of 2^62 x 128 must not wrap
  // around to a small number). The product of the non-zero extents must fit in int64_t even when
  // a zero extent makes the array empty: later products of extents (a sample's size, say) would
  // overflow (found by fuzzing).
  uint64_t nonzero = 1, needed = 0;
  bool empty = false;
  for (int64_t extent : a.shape) {
    empty |= extent == 0;
    if (extent != 0 && (__builtin_mul_overflow(nonzero, static_cast<uint64_t>(extent), &nonzero) ||
                        nonzero > static_cast<uint64_t>(INT64_MAX))) {
      fail(path,
           fmt::format("npy shape ({}) is larger than any array can be", fmt::join(a.shape, ", ")));
    }
  }
  const uint64_t elements = empty ? 0 : nonzero;
  const bool overflow = __builtin_mul_overflow(elements, static_cast<uint64_t>(element), &needed);
  if (overflow || body != needed) {
    fail(path, fmt::format("the body has {} bytes but shape ({}) of {} needs {}", body,
                           fmt::join(a.shape, ", "), t,
                           overflow ? std::string("more than 2^64") : std::to_string(needed)));
  }
  const auto n = static_cast<int64_t>(elements);
  if (want == NpyKind::kFloat && is_float) {
    a.values.resize(static_cast<size_t>(n));
    if (!read_exactly(reinterpret_cast<char*>(a.values.data()), needed)) {
      fail(path, "cannot read the npy body");
    }
    return a;
  }
  std::string raw(needed, '\0');
  if (!read_exactly(raw.data(), needed)) fail(path, "cannot read the npy body");
  const char* data = raw.data();
  if (want == NpyKind::kFloat) {
    a.values.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      a.values[static_cast<size_t>(i)] = static_cast<unsigned char>(data[i]) * uint8_scale;
    }
    return a;
  }
  switch (size * (kind == 'u' ? -1 : 1)) {
    case 1:
      convert<int8_t>(data, n, a.integers);
      break;
    case -1:
      convert<uint8_t>(data, n, a.integers);
      break;
    case 2:
      convert<int16_t>(data, n, a.integers);
      break;
    case -2:
      convert<uint16_t>(data, n, a.integers);
      break;
    case 4:
      convert<int32_t>(data, n, a.integers);
      break;
    case -4:
      convert<uint32_t>(data, n, a.integers);
      break;
    case 8:
      convert<int64_t>(data, n, a.integers);
      break;
    default:
      convert<uint64_t>(data, n, a.integers);
      break;
  }
  return a;
}

}  // namespace convoy
