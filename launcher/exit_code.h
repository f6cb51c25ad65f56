// The one place where an error's kind becomes the process exit code: 2 when the user's input is
// at fault (a flag, a file, a name, a token), 1 when the machine or convoy failed (a full disk,
// an unreachable service, an internal error).
#pragma once

#include "core/error.h"

namespace convoy {

int exit_code(ErrorKind kind);

// A training job that stopped gracefully on SIGTERM, SIGINT or SIGUSR1 after storing a checkpoint
// to resume from: 128 + SIGTERM, as a shell reports a process that SIGTERM ended. Schedulers treat
// 128-255 as retryable (Kubernetes' MPIJob `ExitCode` restart policy; 1-127 are permanent).
inline constexpr int kExitPreempted = 143;

}  // namespace convoy
