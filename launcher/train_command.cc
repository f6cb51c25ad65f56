// convoy train: parse and check the flags, load the data, hand the run to a TrainingSession
// (dist/training_session.h), print the start line, progress and the final report.
#include <fmt/format.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_file.h"
#include "dist/metrics_store.h"
#include "dist/training_session.h"
#include "launcher/command_support.h"
#include "launcher/exit_code.h"
#include "launcher/progress.h"
#include "launcher/report.h"
#include "launcher/run_job.h"
#include "launcher/train_flags.h"

namespace convoy {

namespace {

// Set by SIGTERM, SIGINT or SIGUSR1 (what convoy launch has mpirun forward to every rank). A
// second SIGTERM or SIGINT ends the process as usual; SIGUSR1 may come again (the launcher repeats
// it until the ranks stop).
std::atomic<bool> stop_requested{false};

// Under `convoy launch`, let the launcher's gdb take stack traces of this rank if it hangs (where
// the kernel lets a process trace only its descendants, which ranks, children of mpirun, are not).
void allow_launcher_to_trace() {
  const char* launcher = std::getenv("CONVOY_LAUNCHER_PID");
  if (launcher == nullptr) return;
  const long pid = std::strtol(launcher, nullptr, 10);
  if (pid > 1) ::prctl(PR_SET_PTRACER, static_cast<unsigned long>(pid), 0, 0, 0);
}

// The signals are blocked in every thread (before any starts, so all inherit the mask) and taken
// by one thread of their own with sigwait. Not a signal handler: a handler runs on whatever
// thread the signal interrupts, and some of oneDNN's JIT kernels point the stack pointer into a
// heap buffer -- the kernel then writes the signal frame (several KB with AVX-512 or AMX state)
// below that buffer, over the heap (seen as "corrupted size vs. prev_size" in a rank that got
// SIGUSR1 mid-step).
void stop_gracefully_on_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    for (bool stopping = false;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) return;
      if (signal != SIGUSR1 && stopping) {
        // The second SIGTERM or SIGINT: end as the signal would have ended the process.
        std::signal(signal, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, signal);
        pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
        ::raise(signal);
        return;
      }
      stopping = stopping || signal != SIGUSR1;
      stop_requested.store(true);
    }
  }).detach();
}

struct Inputs {
  pb::ModelSpec spec;
  Dataset train, test;
};

// Reads and checks everything the flags name; every Error names its flag.
Inputs load_inputs(const TrainCommand& cmd, const Job& job) {
  Inputs in;
  in.spec = for_flag("--model", [&] { return load_model_spec(cmd.model); });
  const ModelPlan plan = plan_model(in.spec, cmd.model);
  if (!cmd.save.empty() && job.is_root()) {
    check_writable(cmd.save, "--save");
    // A run killed while saving left its temporary beside the file: gone before this run starts.
    remove_stale_temporaries(cmd.save);
  }
  if (!cmd.trace.empty()) {
    check_writable(timeline_path(cmd.trace, job.rank(), job.size()), "--trace");
  }
  const bool has_store = !cmd.coordinator.empty() || !cmd.checkpoint_dir.empty();
  if (cmd.resume && !has_store) {
    throw Error::invalid_input("--resume: needs --coordinator or --checkpoint-dir");
  }
  if (cmd.checkpoint_every > 0 && !has_store) {
    throw Error::invalid_input("--checkpoint-every: needs --coordinator or --checkpoint-dir");
  }
  if (!cmd.coordinator.empty() && !cmd.checkpoint_dir.empty()) {
    throw Error::invalid_input("--checkpoint-dir: not with --coordinator, which stores them");
  }
  if (!cmd.job_id.empty()) check_job_id(cmd.job_id);
  in.train = load_split(cmd.data, Split::kTrain, plan, cmd.model);
  in.test = load_split(cmd.data, Split::kTest, plan, cmd.model);
  for_flag("--batch-size", [&] { check_batch_fits(cmd.batch_size * job.size(), in.train); });
  return in;
}

// The flags with --global-batch-size turned into this job's per-rank --batch-size.
TrainCommand with_rank_batch(TrainCommand cmd, int ranks) {
  if (cmd.global_batch_size == 0) return cmd;
  if (cmd.global_batch_size % ranks != 0) {
    throw Error::invalid_input(fmt::format(
        "--global-batch-size: {} is not divisible by the {} ranks", cmd.global_batch_size, ranks));
  }
  cmd.batch_size = cmd.global_batch_size / ranks;
  return cmd;
}

int train_job(const TrainCommand& flags, Job& job) {
  const int threads = job.threads(flags.threads);
  const TrainCommand cmd = job.agree([&] {
    // The model's recipe (its train block) for the flags not given.
    const pb::ModelSpec spec = for_flag("--model", [&] { return load_model_spec(flags.model); });
    TrainCommand c =
        with_rank_batch(with_model_defaults(flags, spec.train(), flags.model), job.size());
    // `auto` as this rank resolves it: ranks that resolve it differently (an AMX host and one
    // without) disagree in the fingerprint instead of training in two precisions.
    c.precision = precision_name(precision_flag(c.precision));
    return c;
  });
  const auto [in, options] = job.agree([&] {
    Inputs inputs = load_inputs(cmd, job);
    TrainingSessionOptions o = training_session_options(cmd, inputs.spec, inputs.train.name);
    o.train.stop_requested = [] { return stop_requested.load(); };
    return std::pair(std::move(inputs), std::move(o));
  });
  if (job.comm() != nullptr) {
    check_same_configuration(*job.comm(), train_fingerprint(cmd, in.spec, in.train, in.test));
  }
  const auto warn = [rank = job.rank(), size = job.size()](const std::string& message) {
    fmt::print(stderr, "convoy: {}{}\n", size > 1 ? fmt::format("rank {}: ", rank) : "", message);
  };
  const auto notice = [](const std::string& message) {
    fmt::print(stderr, "convoy: {}\n", message);
  };
  TrainingSession session(job, in.spec, options, warn, notice);
  if (cmd.resume) for_flag("--resume", [&] { session.resume(); });

  if (job.is_root() && cmd.log_json) {
    nlohmann::json start = train_flags_event(cmd);
    start.update({{"event", "start"},
                  {"model", in.spec.name().empty() ? cmd.model : in.spec.name()},
                  {"parameters", session.parameter_count()},
                  {"dataset", in.train.name},
                  {"train_samples", in.train.count()},
                  {"test_samples", in.test.count()},
                  {"global_batch_size", cmd.batch_size * job.size()},
                  {"augment", options.train.augmentation.str()},
                  {"world_size", job.size()},
                  {"threads", threads}});
    fmt::print("{}\n", start.dump());
    std::fflush(stdout);
  } else if (job.is_root()) {
    notice(
        fmt::format("training {} ({} parameters) on {} ({} train / {} test samples), batch {} x "
                    "{} rank(s), {} thread(s) per rank",
                    cmd.model, session.parameter_count(), in.train.name, in.train.count(),
                    in.test.count(), cmd.batch_size, job.size(), threads));
  }

  ProgressReporter progress(
      {.json = cmd.log_json,
       .terminal = cmd.progress == "bar" || (cmd.progress == "auto" && ::isatty(STDERR_FILENO)),
       .quiet = cmd.progress == "none",
       .epochs = cmd.epochs});
  const TrainSummary summary = session.run(in.train, in.test, &progress);
  if (summary.stopped) {
    session.check_stored();
    if (job.is_root()) {
      notice(fmt::format("stopped by a signal after step {}{}", summary.steps,
                         cmd.coordinator.empty() && cmd.checkpoint_dir.empty()
                             ? ""
                             : "; its checkpoint is stored: --resume continues from it"));
    }
    return kExitPreempted;
  }
  if (!job.is_root()) return 0;
  print_final_report(*summary.test, in.test.class_names, &summary, job.size(), cmd.log_json);
  if (!cmd.save.empty() && !cmd.log_json) fmt::print("checkpoint saved to {}\n", cmd.save);
  session.check_stored();
  return 0;
}

}  // namespace

int run_train(const TrainCommand& cmd) {
  stop_gracefully_on_signals();
  allow_launcher_to_trace();
  return run_job([&](Job& job) { return train_job(cmd, job); });
}

}  // namespace convoy
