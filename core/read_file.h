// Reading a whole file the user named (a token, a certificate, a model description).
#pragma once

#include <string>

namespace convoy {

// The file's bytes. Throws Error naming `path` when it cannot be read (invalid input for a
// missing or unreadable file, an I/O error when the machine fails).
std::string read_file(const std::string& path);

}  // namespace convoy
