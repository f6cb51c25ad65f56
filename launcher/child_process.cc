#include "launcher/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/stopwatch.h"

extern char** environ;

namespace convoy {

namespace {

constexpr size_t kMaxCapturedBytes = size_t{1} << 20;

void close_both(int fds[2]) {
  if (fds[0] >= 0) ::close(fds[0]);
  if (fds[1] >= 0) ::close(fds[1]);
}

}  // namespace

std::string shell_quoted(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& a : argv) {
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_./=:,+@%") == std::string::npos;
    std::string quoted = "'";
    for (const char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (line.empty() ? "" : " ") + (plain ? a : quoted + "'");
  }
  return line;
}

namespace {

// argv[0] as execve wants it: a path, searched on PATH when it has no '/'. Done before fork, since
// the child may only make async-signal-safe calls.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t begin = 0; begin <= dirs.size();) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > begin ? dirs.substr(begin, end - begin) : ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  throw Error::io(fmt::format("cannot run {}: not found on PATH", name));
}

}  // namespace

SpawnedChild spawn_piped(const std::vector<std::string>& argv) {
  const std::string program = find_program(argv[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2] = {-1, -1}, err[2] = {-1, -1}, exec_failed[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(exec_failed, O_CLOEXEC) != 0) {
    const Error e = Error::io(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    close_both(out);
    close_both(err);
    close_both(exec_failed);
    throw e;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only (the launcher has other threads).
    ::setpgid(0, 0);
    // Dies with the launcher, even by SIGKILL: mpirun then ends its ranks.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction defaults {};
    defaults.sa_handler = SIG_DFL;
    for (const int s : {SIGTERM, SIGINT, SIGUSR1, SIGPIPE, SIGCHLD}) {
      ::sigaction(s, &defaults, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execve(program.c_str(), args.data(), environ);
    const int error = errno;
    [[maybe_unused]] const ssize_t written = ::write(exec_failed[1], &error, sizeof error);
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(out[1]);
  ::close(err[1]);
  ::close(exec_failed[1]);
  int error = pid < 0 ? fork_error : 0;
  if (pid > 0) {
    ssize_t n;
    while ((n = ::read(exec_failed[0], &error, sizeof error)) < 0 && errno == EINTR) {
    }
    if (n <= 0) error = 0;  // closed by a successful exec
  }
  ::close(exec_failed[0]);
  if (error != 0) {
    ::close(out[0]);
    ::close(err[0]);
    if (pid > 0) wait_exit_code(pid);
    throw Error::io(fmt::format("cannot run {}: {}", argv[0], std::strerror(error)));
  }
  ::setpgid(pid, pid);  // also here, so that signals to the group work at once
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  ::fcntl(err[0], F_SETFL, O_NONBLOCK);
  return {pid, out[0], err[0]};
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ScriptResult run_to_end(const std::vector<std::string>& argv, double timeout_seconds) {
  const SpawnedChild child = spawn_piped(argv);
  ScriptResult result;
  std::string* sinks[2] = {&result.out, &result.err};
  pollfd fds[2] = {{child.out, POLLIN, 0}, {child.err, POLLIN, 0}};
  const Stopwatch clock;
  std::optional<int> exit_code;
  // Until both pipes close -- or the program has ended and what it wrote is read: a background
  // process it left may hold the pipes open.
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const double left = timeout_seconds - clock.seconds();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(-child.pid, SIGKILL);
      break;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(std::min(left, 0.05) * 1000) + 1);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        if (sinks[i]->size() + static_cast<size_t>(n) > kMaxCapturedBytes) {
          result.truncated = true;
        } else {
          sinks[i]->append(buffer, static_cast<size_t>(n));
        }
      } else if (n == 0 || errno != EAGAIN) {
        fds[i].fd = -1;
      }
    }
    if (ready == 0 && exit_code) break;  // ended, and nothing more to read
    int status = 0;
    if (!exit_code && ::waitpid(child.pid, &status, WNOHANG) == child.pid) {
      exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  ::close(child.out);
  ::close(child.err);
  result.exit_code = exit_code ? *exit_code : wait_exit_code(child.pid);
  return result;
}

}  // namespace convoy
