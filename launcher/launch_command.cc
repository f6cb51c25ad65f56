// convoy launch: starts train, evaluate or bench under Open MPI's mpirun with the placement
// launcher/launch_plan.h works out, and (for train) keeps the job going through failures with a
// JobSupervisor (launcher/job_supervisor.h) and a coordinator: the one given, or one embedded in
// the launcher on 127.0.0.1, keeping its state in --state-dir.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/model_spec.h"
#include "core/read_file.h"
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

std::string self_path() {
  char path[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "convoy";
}

int cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// The hosts of the next start: from the hostfile (read again each time, so that it may be
// edited), from the discovery script (run again each time), or this machine.
std::vector<HostSlots> find_hosts(const LaunchCommand& cmd) {
  if (!cmd.hostfile.empty()) {
    return for_flag("--hostfile",
                    [&] { return parse_hostfile(read_file(cmd.hostfile), cmd.hostfile); });
  }
  if (cmd.discovery_script.empty()) return {{"localhost", cores()}};
  const std::string flag = "--host-discovery-script";
  const ScriptResult run = for_flag(flag, [&] {
    return run_to_end({"/bin/sh", "-c", cmd.discovery_script}, 30);
  });
  if (run.timed_out) {
    throw Error::invalid_input(fmt::format("{}: '{}' did not finish within {:g} s", flag,
                                           cmd.discovery_script, kDiscoverySeconds));
  }
  if (run.exit_code != 0) {
    const std::string first = run.err.substr(0, run.err.find('\n'));
    throw Error::invalid_input(fmt::format("{}: '{}' exited with code {}{}", flag,
                                           cmd.discovery_script, run.exit_code,
                                           first.empty() ? "" : ": " + first.substr(0, 200)));
  }
  return parse_discovered_hosts(run.out,
                                fmt::format("{}: output of '{}'", flag, cmd.discovery_script));
}

// The ranks to start on `slots` slots: -np (or every slot); with --min-np, fewer when slots were
// lost -- as many as divide the global batch -- but no fewer than --min-np.
int choose_ranks(const LaunchCommand& cmd, int slots, int64_t global_batch) {
  int ranks = cmd.ranks > 0 ? cmd.ranks : slots;
  if (cmd.min_ranks == 0 || slots >= ranks) return ranks;
  ranks = slots;
  while (global_batch > 0 && ranks > 1 && global_batch % ranks != 0) --ranks;
  if (ranks < cmd.min_ranks) {
    throw Error::unavailable(fmt::format("only {} slot(s) left for the job, fewer than --min-np {}",
                                         slots, cmd.min_ranks));
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
  request.exports = {fmt::format("CONVOY_LAUNCHER_PID={}", ::getpid())};
  return request;
}

void block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

// evaluate and bench: one start, its output sorted like train's, no restarts.
int launch_once(const LaunchCommand& cmd, std::vector<HostSlots> hosts) {
  LaunchRequest request = base_request(cmd);
  request.hosts = std::move(hosts);
  request.ranks = cmd.ranks;
  request.command = cmd.command;
  const std::vector<std::string> argv = mpirun_argv(request);
  if (cmd.dry_run) {
    fmt::print("{}\n", shell_quoted(argv));
    return 0;
  }
  block_stop_signals();
  JobSupervisor supervisor(
      {.job_id = cmd.command[0], .max_restarts = 0, .trace_dir = "", .once = true},
      [&](int) { return argv; }, nullptr);
  return supervisor.run();
}

int launch_train(const LaunchCommand& cmd, std::vector<HostSlots> first_hosts) {
  const std::vector<std::string> train_args(cmd.command.begin() + 1, cmd.command.end());
  const TrainCommand train = parse_train_args(train_args);
  if (!train.checkpoint_dir.empty()) {
    throw Error::invalid_input(
        "--checkpoint-dir: convoy launch keeps the job's checkpoints at its coordinator (leave "
        "it out; --state-dir says where the embedded coordinator keeps them)");
  }
  if (cmd.fresh && train.resume) throw Error::invalid_input("--fresh: not with train's --resume");
  const int max_ranks = cmd.ranks;
  if (cmd.min_ranks > 0 && max_ranks > 0 && cmd.min_ranks > max_ranks) {
    throw Error::invalid_input(
        fmt::format("--min-np: {} is more than -np {}", cmd.min_ranks, max_ranks));
  }
  if (cmd.min_ranks > 0 && train.global_batch_size == 0) {
    throw Error::invalid_input(
        "--min-np: a job that may restart on fewer ranks needs train's --global-batch-size (the "
        "batch of all ranks together), so that its steps stay the same");
  }
  const pb::ModelSpec spec = for_flag("--model", [&] { return load_model_spec(train.model); });
  const std::string job_id =
      train.job_id.empty() ? default_job_id(spec, train.model) : train.job_id;

  const std::string given = !cmd.coordinator.empty() ? cmd.coordinator : train.coordinator;
  check_job_id(job_id);
  // The ranks report under the job id the launcher watches.
  std::vector<std::string> extra;
  if (train.job_id.empty()) extra = {"--job-id", job_id};
  if (!cmd.coordinator.empty()) extra.insert(extra.end(), {"--coordinator", cmd.coordinator});
  const LaunchRequest base = base_request(cmd);
  const auto argv_for = [&](const std::string& coordinator, bool resume) {
    LaunchRequest request = base;
    // The hosts found at the start serve the first start; later ones look again.
    request.hosts = first_hosts.empty() ? find_hosts(cmd) : std::move(first_hosts);
    first_hosts.clear();
    request.ranks = choose_ranks(cmd, total_slots(request.hosts), train.global_batch_size);
    request.command = cmd.command;
    request.command.insert(request.command.end(), extra.begin(), extra.end());
    if (given.empty())
      request.command.insert(request.command.end(), {"--coordinator", coordinator});
    if (resume) request.command.push_back("--resume");
    return mpirun_argv(request);
  };
  if (cmd.dry_run) {
    fmt::print("{}\n", shell_quoted(argv_for("127.0.0.1:<port>", !cmd.fresh)));
    return 0;
  }

  block_stop_signals();  // before any thread starts: the supervisor reads them from a signalfd
  SteadyClock clock;
  std::unique_ptr<CoordinatorServer> embedded;
  std::string target = given;
  if (given.empty()) {
    prepare_state_dir(cmd.state_dir, "--state-dir");
    CoordinatorOptions options;
    options.state_dir = cmd.state_dir;
    embedded = std::make_unique<CoordinatorServer>(options, "127.0.0.1:0", clock);
    target = fmt::format("127.0.0.1:{}", embedded->port());
  }
  CoordinatorClient client(coordinator_address(target, train.auth_token_file, train.tls_ca));
  fmt::print(stderr,
             "convoy launch: job '{}' reports to {}{}{}; watch it with: convoy monitor {} status "
             "--job {}\n",
             job_id, embedded ? "an embedded coordinator on " : "the coordinator at ", target,
             embedded ? fmt::format(" (state in {})", cmd.state_dir) : "", target, job_id);

  // --fresh: the checkpoints already stored belong to an earlier run; resume only from new ones.
  std::set<std::string> earlier;
  if (cmd.fresh) {
    try {
      const pb::CheckpointList stored = client.list_checkpoints(job_id);
      for (const pb::CheckpointInfo& c : stored.checkpoint()) earlier.insert(c.name());
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;
    }
  }
  const auto resume = [&] {
    if (!cmd.fresh) return true;
    try {
      const pb::CheckpointList stored = client.list_checkpoints(job_id);
      for (const pb::CheckpointInfo& c : stored.checkpoint()) {
        if (!c.corrupt() && earlier.count(c.name()) == 0) return true;
      }
    } catch (const Error&) {
    }
    return false;
  };
  JobSupervisor supervisor(
      {.job_id = job_id,
       .max_restarts = cmd.max_restarts,
       .hang_timeout = cmd.hang_timeout,
       .grace_period = cmd.grace_period,
       .first_backoff = cmd.backoff,
       .trace_dir = cmd.state_dir},
      [&](int) { return argv_for(target, resume()); }, &client);
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
  std::vector<HostSlots> hosts = find_hosts(cmd);
  return cmd.command[0] == "train" ? launch_train(cmd, std::move(hosts))
                                   : launch_once(cmd, std::move(hosts));
}

}  // namespace convoy
