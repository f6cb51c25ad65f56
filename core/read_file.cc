#include "core/read_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace convoy {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error::from_errno(errno, fmt::format("cannot read '{}'", path));
  std::stringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error::io(fmt::format("cannot read '{}'", path));
  return s.str();
}

}  // namespace convoy
