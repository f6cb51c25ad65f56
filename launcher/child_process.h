// Child processes of `convoy launch`: mpirun, host discovery scripts and gdb.
//
// Each child runs in a process group of its own, so that a terminal's Ctrl-C (sent to the
// foreground group) reaches only the launcher, which decides what the job gets; and with the
// default signal mask and dispositions, whatever the launcher blocks. Its stdout and stderr come
// back on pipes. It gets SIGTERM when the launcher dies, even by SIGKILL (PR_SET_PDEATHSIG): mpirun
// then ends its ranks, and no job trains on without its launcher. (posix_spawn cannot ask for
// that; after fork the child makes only async-signal-safe calls, as the launcher runs the embedded
// coordinator's threads.)
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace convoy {

struct SpawnedChild {
  pid_t pid = -1;
  int out = -1;  // read ends of the child's stdout and stderr (non-blocking)
  int err = -1;
};

// argv as one line a shell would run (single quotes where needed), for messages.
std::string shell_quoted(const std::vector<std::string>& argv);

// Starts argv[0] (searched on PATH). Throws Error (I/O) when it cannot be started.
SpawnedChild spawn_piped(const std::vector<std::string>& argv);

// Waits for `pid`; returns its exit code, or 128 + the signal that ended it.
int wait_exit_code(pid_t pid);

struct ScriptResult {
  int exit_code = 0;
  std::string out;
  std::string err;
  bool timed_out = false;  // killed (with its whole process group) after the timeout
  bool truncated = false;  // printed more than the 1 MiB kept of each stream
};

// Runs argv to its end, or kills it after `timeout_seconds`, and returns what it printed (each
// stream up to 1 MiB; the rest is dropped). It has ended when it exited and its pipes are drained,
// even if a background process it started still holds them.
ScriptResult run_to_end(const std::vector<std::string>& argv, double timeout_seconds);

}  // namespace convoy
