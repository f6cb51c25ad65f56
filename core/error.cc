#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace convoy {

std::string_view kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput:
      return "invalid input";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kCorruption:
      return "corruption";
    case ErrorKind::kLimitExceeded:
      return "limit exceeded";
    case ErrorKind::kIo:
      return "I/O error";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kUnauthenticated:
      return "unauthenticated";
    case ErrorKind::kInternal:
      return "internal error";
  }
  return "error";
}

Error Error::from_errno(int err, const std::string& message) {
  const std::string text = message + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case EACCES:
    case EPERM:
    case EROFS:
    case ENAMETOOLONG:
    case ELOOP:
    case EEXIST:
      return invalid_input(text);
    default:
      return io(text);
  }
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
