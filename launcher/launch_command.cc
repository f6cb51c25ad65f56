// convoy launch: starts train, evaluate or bench under Open MPI's mpirun with the placement
// launcher/launch_plan.h works out, and (for train) keeps the job going through failures with a
// JobSupervisor (launcher/job_supervisor.h) and a coordinator: the one given, or one embedded in
// the launcher on 127.0.0.1, keeping its state in --state-dir.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/model_spec.h"
#include "core/read_file.h"
#include "core/stopwatch.h"
#include "dist/clock.h"
#include "dist/coordinator_client.h"
#include "dist/coordinator_service.h"
#include "dist/training_session.h"
#include "launcher/child_process.h"
#include "launcher/command_support.h"
#include "launcher/commands.h"
#include "launcher/job_supervisor.h"
#include "launcher/launch_plan.h"
#include "launcher/train_flags.h"

namespace convoy {

namespace {

constexpr double kDiscoverySeconds = 30;
constexpr size_t kMaxHostfileBytes = size_t{1} << 20;

std::string self_path() {
  char path[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "convoy";
}

int cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// A hostfile: a regular file of at most 1 MiB (not a device or a pipe that never ends).
std::string read_hostfile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    if (!S_ISREG(info.st_mode)) {
      throw Error::invalid_input(fmt::format("'{}' is not a regular file", path));
    }
    if (static_cast<size_t>(info.st_size) > kMaxHostfileBytes) {
      throw Error::invalid_input(fmt::format("'{}' is larger than 1 MiB", path));
    }
  }
  return read_file(path);
}

// The hosts of the next start: from the hostfile (read again each time, so that it may be
// edited), from the discovery script (run again each time), or this machine.
std::vector<HostSlots> find_hosts(const LaunchCommand& cmd) {
  if (!cmd.hostfile.empty()) {
    return for_flag("--hostfile",
                    [&] { return parse_hostfile(read_hostfile(cmd.hostfile), cmd.hostfile); });
  }
  if (cmd.discovery_script.empty()) return {{"localhost", cores()}};
  const std::string flag = "--host-discovery-script";
  const ScriptResult run = for_flag(flag, [&] {
    return run_to_end({"/bin/sh", "-c", cmd.discovery_script}, kDiscoverySeconds);
  });
  if (run.timed_out) {
    throw Error::invalid_input(fmt::format("{}: '{}' did not finish within {:g} s", flag,
                                           cmd.discovery_script, kDiscoverySeconds));
  }
  if (run.exit_code != 0) {
    std::string first = run.err.substr(0, run.err.find('\n')).substr(0, 200);
    std::replace_if(
        first.begin(), first.end(), [](char c) { return c < 0x20 || c == 0x7f; }, '?');
    throw Error::invalid_input(fmt::format("{}: '{}' exited with code {}{}", flag,
                                           cmd.discovery_script, run.exit_code,
                                           first.empty() ? "" : ": " + first));
  }
  if (run.truncated) {
    throw Error::invalid_input(
        fmt::format("{}: '{}' printed more than 1 MiB", flag, cmd.discovery_script));
  }
  return parse_discovered_hosts(run.out,
                                fmt::format("{}: output of '{}'", flag, cmd.discovery_script));
}

// The ranks to start on `slots` slots: -np (or every slot); with --min-np, fewer when slots were
// lost -- as many as divide the global batch -- but no fewer than --min-np.
int choose_ranks(const LaunchCommand& cmd, int slots, int64_t global_batch) {
  const int wanted = cmd.ranks > 0 ? cmd.ranks : slots;
  if (cmd.min_ranks == 0 || slots >= wanted) return wanted;
  int ranks = slots;
  while (global_batch > 0 && ranks > 1 && global_batch % ranks != 0) --ranks;
  if (ranks < cmd.min_ranks) {
    throw Error::invalid_input(
        ranks == slots
            ? fmt::format("only {} slot(s) left for the job, fewer than --min-np {}", slots,
                          cmd.min_ranks)
            : fmt::format("only {} slot(s) left, and no rank count from {} down to --min-np {} "
                          "divides --global-batch-size {}",
                          slots, slots, cmd.min_ranks, global_batch));
  }
  return ranks;
}

LaunchRequest base_request(const LaunchCommand& cmd) {
  LaunchRequest request;
  request.convoy = self_path();
  request.hostfile = cmd.hostfile;
  request.list_hosts = !cmd.discovery_script.empty();
  request.threads = cmd.threads;
  request.cores = cores();
  request.root = ::geteuid() == 0;
  request.tag_output = true;
  // Marks the ranks as this launcher's (job_supervisor.h); not in a line printed for later use.
  if (!cmd.dry_run) request.exports = {fmt::format("CONVOY_LAUNCHER_PID={}", ::getpid())};
  return request;
}

// SIGTERM and SIGINT wait in a signalfd for the supervisor, from before the first discovery script
// and before any thread starts; a reader that closes stdout early ends no job.
void hold_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// evaluate and bench: one start, its output sorted like train's, no restarts.
int launch_once(const LaunchCommand& cmd, std::vector<HostSlots> hosts) {
  if (cmd.fresh || cmd.min_ranks > 0 || !cmd.coordinator.empty()) {
    throw Error::invalid_input(fmt::format("{}: only for train", cmd.fresh ? "--fresh"
                                                                 : cmd.min_ranks > 0
                                                                     ? "--min-np"
                                                                     : "--coordinator"));
  }
  LaunchRequest request = base_request(cmd);
  request.hosts = std::move(hosts);
  request.ranks = cmd.ranks;
  request.command = cmd.command;
  const JobStart start{mpirun_argv(request), request.ranks};
  if (cmd.dry_run) {
    fmt::print("{}\n", shell_quoted(start.argv));
    return 0;
  }
  JobSupervisor supervisor(
      {.job_id = cmd.command[0], .max_restarts = 0, .trace_dir = "", .once = true},
      [&](int) { return start; }, nullptr);
  return supervisor.run();
}

// --fresh with the embedded coordinator: the job's earlier checkpoints and metrics are kept, as
// the job `<job>.<unix time>` (listed, downloadable), and the job starts with none.
void set_earlier_run_aside(const std::string& state_dir, const std::string& job_id) {
  const std::string kept =
      fmt::format("{}.{}", job_id.substr(0, 53), static_cast<int64_t>(wall_seconds()));
  for (const char* kind : {"checkpoints", "metrics"}) {
    const std::filesystem::path from = std::filesystem::path(state_dir) / kind / job_id;
    std::error_code error;
    if (!std::filesystem::exists(from, error)) continue;
    std::filesystem::rename(from, from.parent_path() / kept, error);
    if (error) {
      throw Error::io(
          fmt::format("--fresh: cannot set '{}' aside: {}", from.string(), error.message()));
    }
  }
  fmt::print(stderr, "convoy launch: --fresh: the earlier run of '{}' is kept as job '{}'\n",
             job_id, kept);
}

int launch_train(const LaunchCommand& cmd, std::vector<HostSlots> first_hosts) {
  const std::vector<std::string> train_args(cmd.command.begin() + 1, cmd.command.end());
  const TrainCommand parsed = parse_train_args(train_args);
  const pb::ModelSpec spec = for_flag("--model", [&] { return load_model_spec(parsed.model); });
  // As the ranks will see them: the model's recipe fills the flags not given.
  const TrainCommand train = with_model_defaults(parsed, spec.train(), parsed.model);
  if (!train.checkpoint_dir.empty()) {
    throw Error::invalid_input(
        "--checkpoint-dir: convoy launch keeps the job's checkpoints at its coordinator (leave "
        "it out; --state-dir says where the embedded coordinator keeps them)");
  }
  if (train.progress == "bar") {
    throw Error::invalid_input(
        "--progress bar: not under convoy launch, which passes output on line by line (use "
        "lines)");
  }
  if (cmd.fresh && train.resume) throw Error::invalid_input("--fresh: not with train's --resume");
  if (cmd.min_ranks > 0 && cmd.ranks > 0 && cmd.min_ranks > cmd.ranks) {
    throw Error::invalid_input(
        fmt::format("--min-np: {} is more than -np {}", cmd.min_ranks, cmd.ranks));
  }
  if (cmd.min_ranks > 0 && train.global_batch_size == 0) {
    throw Error::invalid_input(
        "--min-np: a job that may restart on fewer ranks needs train's --global-batch-size (the "
        "batch of all ranks together), so that its steps stay the same");
  }
  const std::string job_id =
      train.job_id.empty() ? default_job_id(spec, train.model) : train.job_id;
  check_job_id(job_id);

  const std::string given = !cmd.coordinator.empty() ? cmd.coordinator : train.coordinator;
  // The ranks report under the job id the launcher watches, and always resume: a first start
  // finds no checkpoint and starts afresh.
  std::vector<std::string> extra;
  if (train.job_id.empty()) extra = {"--job-id", job_id};
  if (!cmd.coordinator.empty()) extra.insert(extra.end(), {"--coordinator", cmd.coordinator});
  const LaunchRequest base = base_request(cmd);
  const auto start_for = [&](const std::string& coordinator) {
    LaunchRequest request = base;
    // The hosts found at the start serve the first start; later ones look again.
    request.hosts = first_hosts.empty() ? find_hosts(cmd) : std::move(first_hosts);
    first_hosts.clear();
    request.ranks = choose_ranks(cmd, total_slots(request.hosts), train.global_batch_size);
    request.command = cmd.command;
    request.command.insert(request.command.end(), extra.begin(), extra.end());
    if (given.empty()) {
      request.command.insert(request.command.end(), {"--coordinator", coordinator});
    }
    request.command.push_back("--resume");
    return JobStart{mpirun_argv(request), request.ranks};
  };
  if (cmd.dry_run) {
    fmt::print("{}\n", shell_quoted(start_for("127.0.0.1:<port>").argv));
    return 0;
  }

  SteadyClock clock;
  std::unique_ptr<StateDirLock> lock;
  std::unique_ptr<CoordinatorServer> embedded;
  std::string target = given;
  if (given.empty()) {
    prepare_state_dir(cmd.state_dir, "--state-dir");
    lock = std::make_unique<StateDirLock>(cmd.state_dir, "--state-dir");
    if (cmd.fresh) set_earlier_run_aside(cmd.state_dir, job_id);
    CoordinatorOptions options;
    options.state_dir = cmd.state_dir;
    try {
      embedded = std::make_unique<CoordinatorServer>(options, "127.0.0.1:0", clock);
    } catch (const std::filesystem::filesystem_error& e) {
      throw state_dir_error(e, "--state-dir");
    }
    target = fmt::format("127.0.0.1:{}", embedded->port());
  }
  CoordinatorClient client(coordinator_address(target, train.auth_token_file, train.tls_ca));
  // A coordinator that cannot be reached or refuses the token is found now, not after 4 starts.
  pb::CheckpointList stored;
  try {
    stored = client.list_checkpoints(job_id);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) throw e.with_context("--coordinator");
  }
  if (cmd.fresh && !embedded && stored.checkpoint_size() > 0) {
    throw Error::invalid_input(fmt::format(
        "--fresh: job '{}' has {} checkpoint(s) at {}; start over under a new train --job-id "
        "(the coordinator keeps the old ones)",
        job_id, stored.checkpoint_size(), target));
  }
  fmt::print(stderr,
             "convoy launch: job '{}' reports to {}{}{}; watch it with: convoy monitor {} status "
             "--job {}\n",
             job_id, embedded ? "an embedded coordinator on " : "the coordinator at ", target,
             embedded ? fmt::format(" (state in {})", cmd.state_dir) : "", target, job_id);
  JobSupervisor supervisor(
      {.job_id = job_id,
       .max_restarts = cmd.max_restarts,
       .hang_timeout = cmd.hang_timeout,
       .grace_period = cmd.grace_period,
       .first_backoff = cmd.backoff,
       .trace_dir = cmd.state_dir},
      [&](int) { return start_for(target); }, &client);
  const int code = supervisor.run();
  if (embedded) embedded->shutdown();
  return code;
}

}  // namespace

int run_launch(const LaunchCommand& cmd) {
  if (cmd.command.empty() ||
      (cmd.command[0] != "train" && cmd.command[0] != "evaluate" && cmd.command[0] != "bench")) {
    throw Error::invalid_input(
        "launch runs train, evaluate or bench: convoy launch [options] -- train --model ...");
  }
  if (!cmd.dry_run) hold_signals();
  std::vector<HostSlots> hosts = find_hosts(cmd);
  return cmd.command[0] == "train" ? launch_train(cmd, std::move(hosts))
                                   : launch_once(cmd, std::move(hosts));
}

}  // namespace convoy
