// The one place where an error's kind becomes the process exit code: 2 when the user's input is
// at fault (a flag, a file, a name, a token), 1 when the machine or convoy failed (a full disk,
// an unreachable service, an internal error).
#pragma once

#include "core/error.h"

namespace convoy {

int exit_code(ErrorKind kind);

}  // namespace convoy
