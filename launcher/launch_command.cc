// convoy launch [-np N] [--hostfile FILE] [--threads T] [--dry-run] -- train|evaluate|bench ...:
// starts the job under Open MPI's mpirun with the placement launcher/launch_plan.h works out,
// prints the mpirun line, and ends with the job's exit code.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/read_file.h"
#include "launcher/command_support.h"
#include "launcher/commands.h"
#include "launcher/launch_plan.h"

namespace convoy {

namespace {

std::string shell_quoted(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& a : argv) {
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_./=:,+@%") == std::string::npos;
    line += (line.empty() ? "" : " ") + (plain ? a : "'" + a + "'");
  }
  return line;
}

std::string self_path() {
  char path[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "convoy";
}

// Runs argv (found on PATH) and returns its exit code (128 + the signal when one ended it).
int run_and_wait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error::io(fmt::format("cannot start {}: {}", argv[0], std::strerror(errno)));
  if (pid == 0) {
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "convoy: launch: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace

int run_launch(const LaunchCommand& cmd) {
  LaunchRequest request;
  request.convoy = self_path();
  request.ranks = cmd.ranks;
  request.threads = cmd.threads;
  request.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  request.root = ::geteuid() == 0;
  request.command = cmd.command;
  if (!cmd.hostfile.empty()) {
    request.hostfile = cmd.hostfile;
    request.hosts = for_flag("--hostfile",
                             [&] { return parse_hostfile(read_file(cmd.hostfile), cmd.hostfile); });
  } else {
    request.hosts = {{"localhost", request.cores}};
  }
  const std::vector<std::string> argv = mpirun_argv(request);
  if (cmd.dry_run) {
    fmt::print("{}\n", shell_quoted(argv));
    return 0;
  }
  fmt::print(stderr, "convoy launch: {}\n", shell_quoted(argv));
  std::fflush(stderr);
  return run_and_wait(argv);
}

}  // namespace convoy
