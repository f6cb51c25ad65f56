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
  note_ranks_of_earlier_starts();
  for (int restart = 0;; ++restart) {
    Outcome outcome;
    try {
      outcome = run_once(attempt_(restart));
    } catch (const Error& e) {
      // Too few hosts for a restart (--min-np) may change: a failed start, retried like others.
      if (restart == 0 || e.kind() != ErrorKind::kUnavailable) throw;
      stopping_ = false;
      hang_.reset();
      outcome = {1, RankFailure{-1, "", e.what()}, {}};
    }
    if (stopping_) return outcome.exit_code == 0 ? 0 : kExitPreempted;
    if (outcome.exit_code == 0 || outcome.exit_code == 2 || outcome.exit_code == kExitPreempted) {
      return outcome.exit_code;  // done; bad input (never retried); preempted by someone else
    }
    RankFailure failure =
        hang_ ? *hang_
              : outcome.failure.value_or(RankFailure{
                    -1, "", fmt::format("mpirun exited with code {}", outcome.exit_code)});
    if (failure.host.empty() && ranks_.count(failure.rank) != 0) {
      failure.host = ranks_[failure.rank].host;  // as the rank registered at the coordinator
    }
    if (!hang_ && !outcome.failure) {
      for (const std::string& line : outcome.mpirun_lines) say("mpirun: " + line);
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
    for (const auto& [rank, seen] : ranks_) earlier_pids_.insert(seen.pid);
    if (!wait_backoff(backoff)) return kExitPreempted;
  }
}

void JobSupervisor::note_ranks_of_earlier_starts() {
  if (coordinator_ == nullptr) return;
  try {
    const pb::JobStatus status = coordinator_->job_status(options_.job_id, 5);
    for (const pb::RankStatus& r : status.rank()) earlier_pids_.insert(static_cast<pid_t>(r.pid()));
  } catch (const Error&) {
    // A job the coordinator does not know yet has no earlier ranks.
  }
}

bool JobSupervisor::wait_backoff(double seconds) {
  pollfd fd{signals_, POLLIN, 0};
  const Stopwatch clock;
  while (clock.seconds() < seconds) {
    const int left_ms = static_cast<int>((seconds - clock.seconds()) * 1000) + 1;
    if (::poll(&fd, 1, left_ms) > 0) {
      signalfd_siginfo info{};
      if (::read(signals_, &info, sizeof info) == sizeof info) {
        say(fmt::format("{}: not starting the job again", ::strsignal(int(info.ssi_signo))));
        return false;
      }
    }
  }
  return true;
}

JobSupervisor::Outcome JobSupervisor::run_once(const std::vector<std::string>& argv) {
  say(shell_quoted(argv));
  stopping_ = hard_stopped_ = hang_handled_ = false;
  hang_.reset();
  ranks_.clear();
  const SpawnedChild child = spawn_piped(argv);
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
    if (fds[2].revents != 0) on_signal(child.pid);
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
    if (stopping_ && !hard_stopped_ && wall_seconds() > stop_deadline_) {
      say(fmt::format("the grace period ({:g} s) is over: ending the job now",
                      options_.grace_period));
      hard_stopped_ = true;
      ::kill(child.pid, SIGTERM);
      kill_deadline_ = wall_seconds() + kKillAfterTermSeconds;
    }
    if (hard_stopped_ && wall_seconds() > kill_deadline_) {
      ::kill(-child.pid, SIGKILL);
      kill_local_ranks();
    }
    if (coordinator_ != nullptr && !stopping_ && !hang_handled_ && now >= next_check) {
      next_check = now + kStatusPeriodSeconds;
      check_hang(child.pid, now);
    }
  }
  output.finish();
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) ::close(fds[i].fd);
  }
  return {*exit_code, output.failure(), output.own_lines()};
}

void JobSupervisor::on_signal(pid_t mpirun) {
  signalfd_siginfo info{};
  while (::read(signals_, &info, sizeof info) == sizeof info) {
    const char* name = ::strsignal(static_cast<int>(info.ssi_signo));
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = wall_seconds() + options_.grace_period;
      say(
          fmt::format("{}: the ranks stop after their current step and store a checkpoint (at "
                      "most {:g} s; a second signal ends them at once)",
                      name, options_.grace_period));
      ::kill(mpirun, SIGUSR1);  // mpirun forwards SIGUSR1 to every rank
    } else if (!hard_stopped_) {
      say(fmt::format("{} again: ending the job now", name));
      hard_stopped_ = true;
      ::kill(mpirun, SIGTERM);
      kill_deadline_ = wall_seconds() + kKillAfterTermSeconds;
    }
  }
}

void JobSupervisor::check_hang(pid_t mpirun, double since_start) {
  pb::JobStatus status;
  try {
    status = coordinator_->job_status(options_.job_id, 2);
  } catch (const Error&) {
    return;  // not registered yet, or the coordinator is busy: ask again in a second
  }
  const double limit = options_.hang_timeout;
  std::vector<int> silent, stalled, all;
  bool all_still = true;
  for (const pb::RankStatus& r : status.rank()) {
    if (earlier_pids_.count(static_cast<pid_t>(r.pid())) != 0) continue;  // not yet registered
    ranks_[r.rank()] = {r.host(), static_cast<pid_t>(r.pid())};
    all.push_back(r.rank());
    if (r.seconds_since_heartbeat() > limit) silent.push_back(r.rank());
    if (r.state() == pb::RankStatus::STALLED && r.seconds_since_progress() > limit) {
      stalled.push_back(r.rank());
    }
    all_still = all_still && r.seconds_since_progress() > limit;
  }
  const bool everyone = static_cast<int>(all.size()) == status.world_size();
  if (!silent.empty()) {
    stop_hung(mpirun, silent, fmt::format("hung: no heartbeat for over {:g} s", limit));
  } else if (!stalled.empty()) {
    stop_hung(mpirun, stalled,
              fmt::format("hung: no step for over {:g} s while other ranks moved", limit));
  } else if (everyone && all_still && since_start > limit) {
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
    traces << "\n=== rank " << rank << " on " << r.host << ", pid " << r.pid << " ===\n";
    if (r.host != host_ || r.pid <= 0) {
      all_local = false;
      traces << "(on another host: only ranks on " << host_ << " can be traced from here)\n";
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
  RankFailure failure{ranks.size() == 1 ? ranks[0] : -1,
                      ranks.size() == 1 ? ranks_[ranks[0]].host : "",
                      fmt::format("{}; stack traces in {}", reason, path)};
  if (ranks.size() > 1) {
    failure.cause = fmt::format("{} ranks {}", ranks.size(), failure.cause);
  }
  hang_ = failure;
  // SIGKILL works on a stopped process too; mpirun then ends the others.
  for (const int rank : ranks) {
    const RankSeen& r = ranks_[rank];
    if (r.host == host_ && r.pid > 0) ::kill(r.pid, SIGKILL);
  }
  if (!all_local) ::kill(mpirun, SIGTERM);
}

void JobSupervisor::kill_local_ranks() {
  for (const auto& [rank, r] : ranks_) {
    if (r.host == host_ && r.pid > 0) ::kill(r.pid, SIGKILL);
  }
}

}  // namespace convoy
