#include "core/read_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "core/error.h"

namespace convoy {

std::string read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             std::fclose);
  if (!file) throw Error::from_errno(errno, fmt::format("cannot read '{}'", path));
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
    bytes.append(buffer, n);
    if (n < sizeof buffer) break;
  }
  // A directory opens but does not read (EISDIR: the user's input); a failing disk is I/O.
  if (std::ferror(file.get()))
    throw Error::from_errno(errno, fmt::format("cannot read '{}'", path));
  return bytes;
}

}  // namespace convoy
