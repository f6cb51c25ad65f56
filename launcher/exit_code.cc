#include "launcher/exit_code.h"

namespace convoy {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput:
    case ErrorKind::kNotFound:
    case ErrorKind::kCorruption:
    case ErrorKind::kLimitExceeded:
    case ErrorKind::kUnauthenticated:
      return 2;
    case ErrorKind::kIo:
    case ErrorKind::kUnavailable:
    case ErrorKind::kInternal:
      break;
  }
  return 1;
}

}  // namespace convoy
