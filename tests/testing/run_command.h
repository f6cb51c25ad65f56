// Runs a program as a child process and collects its exit status and output, killing it (and
// failing) if it runs longer than a timeout.
#pragma once

#include <string>
#include <vector>

namespace convoy::testing {

struct CommandResult {
  int exit_code = -1;  // when the process exited normally
  int signal = 0;      // non-zero when it was killed by a signal (a crash, or our timeout)
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

CommandResult run_command(const std::vector<std::string>& argv, double timeout_seconds = 300,
                          const std::vector<std::string>& extra_env = {});

// Path of the convoy binary under test.
std::string convoy_binary();

}  // namespace convoy::testing
