#include "testing/run_command.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace {
// The processes tests start inherit this. When ranks outnumber the cores (three or four ranks
// here), each rank loads the machine's topology itself in MPI_Init, and hwloc's PCI component
// reads the PCI ID database into a buffer it grows by realloc: under AddressSanitizer, whose
// realloc always copies, that alone took 13 s per job start. Ranks in tests talk over loopback;
// which PCI devices are near which cores does not matter to them.
const bool kNoPciTopology = [] {
  ::setenv("HWLOC_COMPONENTS", "-pci", /*overwrite=*/0);
  return true;
}();
}  // namespace

#if defined(CONVOY_ASAN)
namespace {
// Sanitized builds: the processes tests start (convoy, mpirun, the ranks) inherit this, so that
// allocations made inside Open MPI's components (built without frame pointers) are unwound far
// enough for tests/sanitizers/default_options.cc's suppressions to recognise them.
const bool kSlowUnwinding = [] {
  ::setenv("ASAN_OPTIONS", "fast_unwind_on_malloc=0", /*overwrite=*/0);
  return true;
}();
}  // namespace
#endif

namespace convoy::testing {

namespace {

// argv and envp for execve, built before fork: a child may not allocate before it execs.
struct ExecArgs {
  ExecArgs(const std::vector<std::string>& args, const std::vector<std::string>& extra_env)
      : arg_strings(args) {
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
    for (std::string& a : arg_strings) argv.push_back(a.data());
    for (std::string& e : env_strings) envp.push_back(e.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
  }
  [[noreturn]] void exec() {
    ::execve(argv[0], argv.data(), envp.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  std::vector<std::string> arg_strings, env_strings;
  std::vector<char*> argv, envp;
};

}  // namespace

bool cpu_has_bf16() {
  // oneDNN's ISA values are sets of feature bits.
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto needed = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (effective & needed) == needed;
}

bool cpu_has_amx() {
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto needed = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
  return (effective & needed) == needed;
}

std::string convoy_binary() {
#ifdef CONVOY_BINARY
  return CONVOY_BINARY;
#else
  return "convoy";
#endif
}

CommandResult run_convoy(std::vector<std::string> args, int threads, double timeout_seconds) {
  args.insert(args.begin(), convoy_binary());
  return run_command(args, timeout_seconds, {"OMP_NUM_THREADS=" + std::to_string(threads)});
}

nlohmann::json last_json_line(const std::string& output) {
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] == '{') last = line;
  }
  return nlohmann::json::parse(last);
}

std::vector<std::string> mpirun_convoy(int ranks, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/mpirun",
                                   "--oversubscribe",
                                   "--bind-to",
                                   "none",
                                   "-np",
                                   std::to_string(ranks),
                                   "-x",
                                   "OMP_NUM_THREADS=1"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  argv.push_back(convoy_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

CommandResult run_command(const std::vector<std::string>& argv, double timeout_seconds,
                          const std::vector<std::string>& extra_env) {
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  ExecArgs exec(argv, extra_env);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group, so a timeout kills its children too
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    exec.exec();
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1000))) < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[65536];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline && !result.timed_out) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    ::usleep(10000);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                           const std::string& stderr_path,
                           const std::vector<std::string>& extra_env) {
  ExecArgs exec(argv, extra_env);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    exec.exec();
  }
  ::setpgid(pid_, pid_);  // also from the parent, so kill_group() works right away
}

ChildProcess::~ChildProcess() {
  if (!ended_) {
    kill_group();
    wait_for(30);
  }
}

bool ChildProcess::wait_for(double seconds) {
  if (ended_) return true;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      ended_ = true;
      if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) signal_ = WTERMSIG(status);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ::usleep(20000);
  }
}

void ChildProcess::kill_group() {
  // Descendants may have process groups of their own (convoy launch starts mpirun in one, and
  // mpirun its ranks): stop the whole tree first, so none can start more, then kill it.
  std::vector<int> tree = {pid_};
  for (size_t i = 0; i < tree.size(); ++i) {
    ::kill(tree[i], SIGSTOP);
    for (const int child : child_pids(tree[i])) tree.push_back(child);
  }
  for (const int pid : tree) ::kill(pid, SIGKILL);
  ::kill(-pid_, SIGKILL);
}

std::vector<int> child_pids(int parent) {
  std::vector<int> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...; comm may contain spaces, so parse after the last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') pids.push_back(std::stoi(name));
  }
  return pids;
}

CommandResult make_self_signed_certificate(const std::string& cert, const std::string& key) {
  return run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                      "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"},
                     60);
}

namespace {
// Binds a loopback TCP socket to `port` (0: the kernel's choice) and closes it; the port it got,
// or 0.
int bind_and_release(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t length = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}
}  // namespace

int free_port() {
  // Below the kernel's ephemeral range (ip_local_port_range): ports there are handed out to
  // every outgoing connection and every listener bound to port 0 (Open MPI's, another test's),
  // any of which could take this one before the test's server binds it. At random, so that tests
  // running at once rarely pick the same one; never one this process was given before.
  int ephemeral_low = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  if (ephemeral_low > kLowest + 1000) {
    static std::mutex mutex;
    static std::set<int> given;
    static std::mt19937 rng(std::random_device{}());
    const std::lock_guard lock(mutex);
    std::uniform_int_distribution<int> pick(kLowest, ephemeral_low - 1);
    for (int attempt = 0; attempt < 100; ++attempt) {
      const int candidate = pick(rng);
      if (given.contains(candidate)) continue;
      if (const int port = bind_and_release(candidate); port != 0) {
        given.insert(port);
        return port;
      }
    }
  }
  return bind_and_release(0);
}

}  // namespace convoy::testing
