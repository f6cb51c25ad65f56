#include "dist/coordinator_address.h"

#include <fmt/format.h>

#include <cctype>

#include "core/error.h"
#include "core/read_file.h"

namespace convoy {

bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

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
