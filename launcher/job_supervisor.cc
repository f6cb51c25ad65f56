#include "launcher/job_supervisor.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/stopwatch.h"
#include "launcher/child_process.h"
#include "launcher/exit_code.h"

namespace convoy {

namespace {

constexpr double kStatusPeriodSeconds = 1.0;
constexpr double kKillAfterTermSeconds = 3.0;  // mpirun's own clean-up before SIGKILL
constexpr double kDrainSeconds = 2.0;          // output still arriving after mpirun ended
constexpr double kGdbSeconds = 30.0;
constexpr double kResendSeconds = 1.0;  // SIGUSR1 again, for ranks that were still starting

void say(const std::string& message) {
  fmt::print(stderr, "convoy launch: {}\n", message);
  std::fflush(stderr);
}

void write_all(FILE* file, std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), file);
  std::fflush(file);
}

std::string machine_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

// True when `pid` is a process this launcher started (through mpirun): its environment carries
// CONVOY_LAUNCHER_PID=<our pid>. Guards every kill and trace against reused pids.
bool started_by_us(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in(fmt::format("/proc/{}/environ", pid), std::ios::binary);
  const std::string environ((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return environ.find(fmt::format("CONVOY_LAUNCHER_PID={}", ::getpid()) + '\0') !=
         std::string::npos;
}

// Our ranks on this machine, rank -> pid: the processes below mpirun with an Open MPI rank.
std::map<int, pid_t> local_ranks(pid_t mpirun) {
  std::map<pid_t, std::vector<pid_t>> children;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line) || line.rfind(')') == std::string::npos) continue;
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (state != 'Z') children[parent].push_back(std::stoi(name));
  }
  std::map<int, pid_t> ranks;
  std::vector<pid_t> todo = {mpirun};
  while (!todo.empty()) {
    const pid_t pid = todo.back();
    todo.pop_back();
    for (const pid_t child : children[pid]) todo.push_back(child);
    if (pid == mpirun || !started_by_us(pid)) continue;
    std::ifstream in(fmt::format("/proc/{}/environ", pid), std::ios::binary);
    std::string var;
    while (std::getline(in, var, '\0')) {
      if (var.rfind("OMPI_COMM_WORLD_RANK=", 0) == 0) ranks[std::stoi(var.substr(21))] = pid;
    }
  }
  return ranks;
}

std::string describe(const RankFailure& f) {
  if (f.rank < 0) return f.cause;
  return fmt::format("rank {}{} {}", f.rank, f.host.empty() ? "" : " on " + f.host, f.cause);
}

}  // namespace

JobSupervisor::JobSupervisor(SupervisorOptions options, Attempt attempt,
                             CoordinatorClient* coordinator)
    : options_(std::move(options)),
      attempt_(std::move(attempt)),
      coordinator_(coordinator),
      host_(machine_name()) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  signals_ = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals_ < 0) throw Error::internal("cannot read signals (signalfd)");
}

JobSupervisor::~JobSupervisor() {
  ::close(signals_);
}

int JobSupervisor::run() {
  for (int restart = 0;; ++restart) {
    if (signalled()) return kExitPreempted;  // e.g. while the hosts were being found
    Outcome outcome;
    try {
      outcome = run_once(attempt_(restart));
    } catch (const Error& e) {
      // The first start's problems are the user's to fix; later, a discovery script that fails
      // once or hosts missing for a while (--min-np) are failures to retry like others.
      if (restart == 0) throw;
      stopping_ = false;
      hang_.reset();
      outcome = {1, RankFailure{-1, "", fmt::format("could not start: {}", e.what())}, {}};
    }
    kill_ranks_left();
    if (stopping_) return outcome.exit_code == 0 ? 0 : kExitPreempted;
    if (outcome.exit_code == kExitPreempted && !hang_) {
      say("the ranks stopped on a signal of their own (exit code 143, preempted): not starting "
          "them again here; a scheduler may");
      return kExitPreempted;
    }
    if (outcome.exit_code == 0 || outcome.exit_code == 2) {
      return outcome.exit_code;  // done; bad input (never retried)
    }
    RankFailure failure =
        hang_ ? *hang_
              : outcome.failure.value_or(RankFailure{
                    -1, "", fmt::format("mpirun exited with code {}", outcome.exit_code)});
    if (failure.host.empty() && ranks_.count(failure.rank) != 0) {
      failure.host = ranks_[failure.rank].host;  // as the rank registered at the coordinator
    }
    if (!hang_ && !outcome.failure) {
      constexpr size_t kShown = 10;
      const std::vector<std::string>& lines = outcome.mpirun_lines;
      for (size_t i = 0; i < std::min(lines.size(), kShown); ++i) say("mpirun: " + lines[i]);
      if (lines.size() > kShown) say(fmt::format("mpirun: ({} more lines)", lines.size() - kShown));
    }
    if (options_.once) {
      say(describe(failure));
      return 1;
    }
    if (restart >= options_.max_restarts) {
      say(fmt::format("{}; no restarts left (--max-restarts {})", describe(failure),
                      options_.max_restarts));
      return 1;
    }
    const double backoff =
        std::min(options_.max_backoff, options_.first_backoff * std::pow(2.0, restart));
    say(fmt::format("{}; restart {} of {} in {:g} s, from the latest checkpoint", describe(failure),
                    restart + 1, options_.max_restarts, backoff));
    if (coordinator_ != nullptr) {
      pb::RestartRecord record;
      record.set_job_id(options_.job_id);
      record.set_restart(restart + 1);
      record.set_rank(failure.rank);
      record.set_host(failure.host.substr(0, 255));
      record.set_cause(failure.cause.substr(0, 1024));
      record.set_wall_time(wall_seconds());
      try {
        coordinator_->report_restart(record, 5);
      } catch (const Error& e) {
        say(fmt::format("could not record the restart at the coordinator: {}", e.what()));
      }
    }
    if (!wait_backoff(backoff)) return kExitPreempted;
  }
}

bool JobSupervisor::signalled() {
  signalfd_siginfo info{};
  if (::read(signals_, &info, sizeof info) != sizeof info) return false;
  say(fmt::format("{}: not starting the job", ::strsignal(static_cast<int>(info.ssi_signo))));
  return true;
}

bool JobSupervisor::wait_backoff(double seconds) {
  pollfd fd{signals_, POLLIN, 0};
  const Stopwatch clock;
  while (clock.seconds() < seconds) {
    const int left_ms = static_cast<int>((seconds - clock.seconds()) * 1000) + 1;
    if (::poll(&fd, 1, left_ms) > 0 && signalled()) return false;
  }
  return true;
}

JobSupervisor::Outcome JobSupervisor::run_once(const JobStart& start) {
  say(shell_quoted(start.argv));
  stopping_ = hard_stopped_ = hang_handled_ = false;
  hang_.reset();
  ranks_.clear();
  const SpawnedChild child = spawn_piped(start.argv);
  MpirunOutput output([](std::string_view line) { write_all(stdout, line); },
                      [](std::string_view line) { write_all(stderr, line); });
  pollfd fds[3] = {{child.out, POLLIN, 0}, {child.err, POLLIN, 0}, {signals_, POLLIN, 0}};
  const Stopwatch clock;
  double next_check = kStatusPeriodSeconds;
  std::optional<int> exit_code;
  double exited_at = 0;
  while (true) {
    ::poll(fds, 3, 200);
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      ssize_t n;
      while ((n = ::read(fds[i].fd, buffer, sizeof buffer)) > 0) {
        output.feed(i, std::string_view(buffer, static_cast<size_t>(n)));
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
    if (fds[2].revents != 0) on_signal(child.pid, !exit_code);
    const double now = clock.seconds();
    if (!exit_code) {
      int status = 0;
      if (::waitpid(child.pid, &status, WNOHANG) == child.pid) {
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        exited_at = now;
      }
    }
    if (exit_code && ((fds[0].fd < 0 && fds[1].fd < 0) || now - exited_at > kDrainSeconds)) break;
    if (exit_code) continue;
    const double wall = wall_seconds();
    if (stopping_ && !hard_stopped_ && !options_.once && wall >= next_resend_) {
      ::kill(child.pid, SIGUSR1);
      next_resend_ = wall + kResendSeconds;
    }
    if (stopping_ && !hard_stopped_ && wall > stop_deadline_) {
      say(fmt::format("the grace period ({:g} s) is over: ending the job now",
                      options_.grace_period));
      hard_stopped_ = true;
      ::kill(child.pid, SIGTERM);
      kill_deadline_ = wall + kKillAfterTermSeconds;
    }
    if (hard_stopped_ && wall > kill_deadline_) {
      ::kill(-child.pid, SIGKILL);
      kill_ranks_left();
    }
    if (now >= next_check) {
      next_check = now + kStatusPeriodSeconds;
      note_local_ranks(child.pid);
      if (coordinator_ != nullptr && !stopping_ && !hang_handled_) {
        check_hang(child.pid, start.ranks, now);
      }
    }
  }
  output.finish();
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) ::close(fds[i].fd);
  }
  return {*exit_code, output.failure(), output.own_lines()};
}

void JobSupervisor::on_signal(pid_t mpirun, bool running) {
  signalfd_siginfo info{};
  while (::read(signals_, &info, sizeof info) == sizeof info) {
    const char* name = ::strsignal(static_cast<int>(info.ssi_signo));
    if (!stopping_ && !options_.once) {
      stopping_ = true;
      stop_deadline_ = wall_seconds() + options_.grace_period;
      next_resend_ = 0;  // SIGUSR1 now, from the loop
      say(
          fmt::format("{}: the ranks stop after their current step and store a checkpoint (at "
                      "most {:g} s; a second signal ends them at once)",
                      name, options_.grace_period));
    } else if (!hard_stopped_) {
      say(fmt::format("{}: ending the job now", name));
      stopping_ = hard_stopped_ = true;
      if (running) ::kill(mpirun, SIGTERM);  // never a pid already reaped
      kill_deadline_ = wall_seconds() + kKillAfterTermSeconds;
    }
  }
}

void JobSupervisor::note_local_ranks(pid_t mpirun) {
  for (const auto& [rank, pid] : local_ranks(mpirun)) {
    RankSeen& seen = ranks_[rank];
    if (seen.pid == 0) seen = {host_, pid};
  }
}

void JobSupervisor::check_hang(pid_t mpirun, int ranks, double since_start) {
  const double limit = options_.hang_timeout;
  pb::JobStatus status;
  try {
    status = coordinator_->job_status(options_.job_id, 2);
  } catch (const Error&) {
    // Not registered yet (judged below once the limit has passed), or busy: ask again.
  }
  std::vector<int> silent, stalled, all;
  std::vector<bool> registered(static_cast<size_t>(std::max(ranks, 0)), false);
  bool all_still = true;
  for (const pb::RankStatus& r : status.rank()) {
    // Only processes of this start: registered after it began (pids may repeat across starts).
    if (r.seconds_since_registration() >= since_start || r.rank() >= ranks) continue;
    registered[static_cast<size_t>(r.rank())] = true;
    ranks_[r.rank()] = {r.host(), static_cast<pid_t>(r.pid())};
    all.push_back(r.rank());
    if (r.seconds_since_heartbeat() > limit) silent.push_back(r.rank());
    if (r.state() == pb::RankStatus::STALLED && r.seconds_since_progress() > limit) {
      stalled.push_back(r.rank());
    }
    all_still = all_still && r.seconds_since_progress() > limit;
  }
  std::vector<int> unregistered;
  for (int r = 0; r < ranks; ++r) {
    if (!registered[static_cast<size_t>(r)]) unregistered.push_back(r);
  }
  if (!silent.empty()) {
    stop_hung(mpirun, silent, fmt::format("hung: no heartbeat for over {:g} s", limit));
  } else if (!stalled.empty()) {
    stop_hung(mpirun, stalled,
              fmt::format("hung: no step for over {:g} s while other ranks moved", limit));
  } else if (!unregistered.empty() && since_start > limit) {
    stop_hung(mpirun, unregistered,
              fmt::format("hung: not registered with the coordinator {:g} s after the start "
                          "(stuck while starting?)",
                          limit));
  } else if (unregistered.empty() && all_still && since_start > limit) {
    stop_hung(mpirun, all,
              fmt::format("hung: no rank took a step for over {:g} s (a collective that never "
                          "completes?)",
                          limit));
  }
}

void JobSupervisor::stop_hung(pid_t mpirun, const std::vector<int>& ranks,
                              const std::string& reason) {
  hang_handled_ = true;
  std::error_code ignored;
  std::filesystem::create_directories(options_.trace_dir, ignored);
  const std::string path = (std::filesystem::path(options_.trace_dir) /
                            fmt::format("hang-{}-{}.txt", options_.job_id, utc_stamp()))
                               .string();
  std::ofstream traces(path);
  traces << "convoy launch: job " << options_.job_id << ": " << reason << "\n";
  bool all_local = true;
  for (const int rank : ranks) {
    const RankSeen& r = ranks_[rank];
    traces << "\n=== rank " << rank << " on " << (r.host.empty() ? "?" : r.host) << ", pid "
           << r.pid << " ===\n";
    if (r.host != host_ || !started_by_us(r.pid)) {
      all_local = false;
      traces << "(not a process of this launcher on " << host_ << ": not traced)\n";
      continue;
    }
    try {
      const ScriptResult gdb = run_to_end(
          {"gdb", "-p", std::to_string(r.pid), "-batch", "-nx", "-q", "-ex", "thread apply all bt"},
          kGdbSeconds);
      traces << gdb.out << gdb.err << (gdb.timed_out ? "(gdb timed out)\n" : "");
    } catch (const Error& e) {
      traces << "(no stack trace: " << e.what() << ")\n";
    }
  }
  traces.close();
  const std::string where = traces.good()
                                ? fmt::format("stack traces in {}", path)
                                : fmt::format("stack traces could not be written to {}", path);
  RankFailure failure{ranks.size() == 1 ? ranks[0] : -1,
                      ranks.size() == 1 ? ranks_[ranks[0]].host : "",
                      fmt::format("{}; {}", reason, where)};
  if (ranks.size() > 1) failure.cause = fmt::format("{} ranks {}", ranks.size(), failure.cause);
  hang_ = failure;
  // SIGKILL works on a stopped process too; mpirun then ends the others.
  for (const int rank : ranks) {
    const RankSeen& r = ranks_[rank];
    if (r.host == host_ && started_by_us(r.pid)) ::kill(r.pid, SIGKILL);
  }
  if (!all_local) ::kill(mpirun, SIGTERM);
}

void JobSupervisor::kill_ranks_left() {
  // mpirun normally takes its ranks with it; if it died abnormally (killed, out of memory), its
  // ranks may live on: end them before another start trains beside them.
  std::vector<pid_t> left;
  for (const auto& [rank, r] : ranks_) {
    if (r.host == host_ && started_by_us(r.pid)) {
      ::kill(r.pid, SIGKILL);
      left.push_back(r.pid);
    }
  }
  for (int i = 0; i < 500 && !left.empty(); ++i) {
    std::erase_if(left, [](pid_t pid) { return !started_by_us(pid); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace convoy
