#include "dist/coordinator_address.h"

#include <fmt/format.h>

#include <cctype>

#include "core/error.h"
#include "core/read_file.h"

namespace convoy {

std::string read_token_file(const std::string& path) {
  std::string token = read_file(path);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  size_t first = 0;
  while (first < token.size() && std::isspace(static_cast<unsigned char>(token[first]))) ++first;
  token.erase(0, first);
  if (token.empty()) throw Error::invalid_input(fmt::format("'{}' is empty", path));
  return token;
}

}  // namespace convoy
