// SHA-256 (OpenSSL's EVP interface), incrementally or over a whole file, as lowercase hex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace convoy {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // The digest of everything updated so far, as 64 lowercase hex digits. Ends the computation.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view bytes);
// Empty when the file cannot be read.
std::string sha256_of_file(const std::string& path);

}  // namespace convoy
