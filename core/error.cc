#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace convoy {

std::string_view kind_name(ErrorKind kind) {
  // In the order of ErrorKind.
  static constexpr std::string_view kNames[] = {"invalid input",   "not found",     "corruption",
                                                "limit exceeded",  "I/O error",     "unavailable",
                                                "unauthenticated", "internal error"};
  return kNames[static_cast<size_t>(kind)];
}

Error Error::from_errno(int err, const std::string& message) {
  const std::string text = message + ": " + std::strerror(err);
  // The path itself cannot be used: the user named the wrong place. Anything else: the machine.
  for (const int path_error :
       {ENOENT, ENOTDIR, EISDIR, EACCES, EPERM, EROFS, ENAMETOOLONG, ELOOP, EEXIST}) {
    if (err == path_error) return invalid_input(text);
  }
  return io(text);
}

Error Error::with_context(std::string_view context) const {
  Error e(kind_, std::string(context) + ": " + what());
  e.job_wide_ = job_wide_;
  return e;
}

void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "convoy: internal error: %s:%d: check failed: %s\n", file, line, condition);
  std::abort();
}

}  // namespace convoy
