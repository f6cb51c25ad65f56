// Runs a program as a child process and collects its exit status and output, killing it (and
// failing) if it runs longer than a timeout.
#pragma once

#include <nlohmann/json.hpp>
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

// A child process running in the background, in its own process group, with stdout and stderr
// going to files. The destructor kills the whole group if it is still running, so a failing test
// never leaves processes behind.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
               const std::string& stderr_path, const std::vector<std::string>& extra_env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  // Waits up to `seconds` for the process to end; true if it has (then exit_code()/signal()).
  bool wait_for(double seconds);
  int exit_code() const { return exit_code_; }
  int signal() const { return signal_; }
  // SIGKILL to the whole process group and every descendant, whatever its group.
  void kill_group();

 private:
  int pid_ = -1;
  bool ended_ = false;
  int exit_code_ = -1;
  int signal_ = 0;
};

// Pids of the live processes whose parent is `parent`.
std::vector<int> child_pids(int parent);

// Whether oneDNN may use AVX512-BF16 here (the CPU has it and ONEDNN_MAX_CPU_ISA allows it): what
// --precision bf16 needs.
bool cpu_has_bf16();
// Whether oneDNN may use AMX here: where --precision auto picks bf16.
bool cpu_has_amx();

// Path of the convoy binary under test.
std::string convoy_binary();

// Runs the convoy binary with `args` and OMP_NUM_THREADS=`threads`.
CommandResult run_convoy(std::vector<std::string> args, int threads = 1,
                         double timeout_seconds = 600);

// run_convoy with the thread count and time limit a test file wants, declared once per file and
// called like a function: `const ConvoyRunner convoy{.threads = 2}; convoy({"train", ...});`.
struct ConvoyRunner {
  int threads = 1;
  double timeout_seconds = 600;
  CommandResult operator()(std::vector<std::string> args) const {
    return run_convoy(std::move(args), threads, timeout_seconds);
  }
};

// The last line of `output` that starts with '{', parsed as JSON (convoy --log-json output).
nlohmann::json last_json_line(const std::string& output);

// argv for `mpirun` starting `ranks` copies of convoy with `args`: oversubscribed (tests run on
// small machines), unbound (each rank's OpenMP threads may use any core), one OpenMP thread per
// rank, and allowed to run as root (CI does).
std::vector<std::string> mpirun_convoy(int ranks, const std::vector<std::string>& args);

// A loopback TCP port that was free a moment ago, outside the range the kernel hands out to
// connections (tests check the server really got it).
int free_port();

// A self-signed certificate and key for localhost and 127.0.0.1 (Debian's openssl), for TLS tests.
CommandResult make_self_signed_certificate(const std::string& cert, const std::string& key);

}  // namespace convoy::testing
