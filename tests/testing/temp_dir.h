// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
#pragma once

#include <string>

namespace convoy::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `bytes` to file(name) and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const;

 private:
  std::string path_;
};

// Writes `bytes` to `path`, replacing it.
void write_file(const std::string& path, const std::string& bytes);
// The bytes of a file (empty when it cannot be read).
std::string read_file(const std::string& path);
// `bytes` gzip-compressed (zlib, gzip framing).
std::string gzip(const std::string& bytes);

}  // namespace convoy::testing
