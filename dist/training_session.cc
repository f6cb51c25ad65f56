#include "dist/training_session.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "dist/checkpoint_sink.h"
#include "dist/checkpoint_source.h"
#include "dist/coordinator_reporter.h"
#include "dist/data_parallel.h"
#include "dist/job_registry.h"
#include "dist/metrics_store.h"
#include "dist/replica_sync.h"
#include "dist/training_hooks.h"

namespace convoy {

namespace {

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

// This process's argv, for the dashboard: /proc/self/cmdline holds it exactly as started (no
// plumbing from the CLI needed), arguments separated by NUL. Cut at the coordinator's limit.
std::vector<std::string> command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  size_t bytes = 0;
  for (std::string arg; std::getline(in, arg, '\0');) {
    bytes += arg.size() + 1;
    if (bytes > JobRegistry::kMaxCommandLineBytes) break;
    args.push_back(std::move(arg));
  }
  return args;
}

// How long the end of a run waits for queued records and checkpoints: generously while the
// coordinator answers (a large checkpoint may be on its way), briefly while it is away.
constexpr double kCheckpointFlushSeconds = 300, kCheckpointFlushAwaySeconds = 10;
constexpr double kRecordFlushSeconds = 30, kRecordFlushAwaySeconds = 5;
// After a preemption the job must be gone within the scheduler's grace period (Kubernetes: 30 s
// by default; convoy launch's --grace-period: 25 s): the last checkpoint gets 15 s, the records 3.
constexpr double kPreemptedCheckpointFlushSeconds = 15, kPreemptedRecordFlushSeconds = 3;

// The model with its initial parameters (the optimizer is built over them).
Model& initialized(Model& model, uint64_t seed) {
  model.initialize(seed);
  return model;
}

// The model as checkpoints record it: its train block says how this run evaluates (flags may
// have overridden the model's own), so that `convoy evaluate` repeats the final report unasked.
pb::ModelSpec recorded_spec(pb::ModelSpec spec, const TrainingSessionOptions& options) {
  spec.mutable_train()->set_precision(precision_name(options.precision));
  spec.mutable_train()->set_test_flip(options.train.test_flip);
  return spec;
}

}  // namespace

std::string default_job_id(const pb::ModelSpec& spec, const std::string& model_source) {
  std::string id =
      spec.name().empty() ? std::filesystem::path(model_source).stem().string() : spec.name();
  for (char& c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return valid_job_id(id) ? id : "convoy";
}

TrainingSession::TrainingSession(Job& job, const pb::ModelSpec& spec,
                                 TrainingSessionOptions options, Say warn, Say notice)
    : job_(job),
      spec_(recorded_spec(spec, options)),  // before options_ takes them
      options_(std::move(options)),
      warn_(std::move(warn)),
      notice_(std::move(notice)),
      engine_(dnnl::engine::kind::cpu, 0),
      stream_(engine_),
      model_(spec_, options_.batch_size, engine_, Model::Mode::kTrain, options_.model_source,
             options_.precision),
      optimizer_(initialized(model_, options_.train.seed).parameters(), options_.optimizer) {
  for (const Parameter* p : model_.parameters()) parameter_count_ += p->value.size();
  if (options_.train.ema_decay > 0) average_.emplace(model_, options_.train.ema_decay);
  if (job_.size() > 1) {
    broadcast_parameters(*job_.comm(), model_);
    verify_identical_parameters(*job_.comm(), model_, "after the initial broadcast");
    reducer_.emplace(*job_.comm(), model_, stream_,
                     static_cast<size_t>(options_.bucket_mb * (1 << 20)));
  }
}

TrainingSession::~TrainingSession() = default;

void TrainingSession::resume() {
  std::string bytes, origin;
  job_.agree([&] {
    if (!job_.is_root()) return 0;
    std::unique_ptr<CheckpointSource> source;
    if (options_.coordinator) {
      source =
          std::make_unique<CoordinatorCheckpointSource>(*options_.coordinator, options_.job_id);
    } else {
      source = std::make_unique<DirectoryCheckpointSource>(options_.checkpoint_dir);
    }
    if (std::optional<FetchedCheckpoint> latest = source->latest()) {
      bytes = std::move(latest->bytes);
      origin = std::move(latest->origin);
    }
    return 0;
  });
  if (job_.comm() != nullptr) {
    broadcast_string(*job_.comm(), bytes);
    broadcast_string(*job_.comm(), origin);
  }
  if (bytes.empty()) {
    if (job_.is_root()) {
      notice_(fmt::format("no checkpoint of job '{}' yet; starting afresh", options_.job_id));
    }
    return;
  }
  const pb::Checkpoint checkpoint = job_.agree([&] {
    pb::Checkpoint ck = parse_checkpoint(bytes, origin);
    auto differs = [&](const std::string& what, const std::string& theirs,
                       const std::string& ours) {
      if (theirs != ours) {
        throw Error::invalid_input(
            fmt::format("{} was written with {} {}, this run has {}", origin, what, theirs, ours));
      }
    };
    // The network must be the same; its recipe (train block) may have changed: what a run uses
    // of it is in its flags, checked below and by the fingerprint.
    pb::ModelSpec theirs_spec = ck.model(), ours_spec = spec_;
    theirs_spec.clear_train();
    ours_spec.clear_train();
    if (theirs_spec.ShortDebugString() != ours_spec.ShortDebugString()) {
      throw Error::invalid_input(fmt::format("{} holds a different model", origin));
    }
    // The global batch decides which samples each step covers (dist/sharding.h): with the same
    // one, a job continues on any number of ranks (the per-rank batch follows).
    const int64_t theirs = int64_t{ck.batch_size()} * std::max(ck.world_size(), 1);
    const int64_t ours = options_.batch_size * job_.size();
    if (theirs != ours) {
      throw Error::invalid_input(fmt::format(
          "{} was written with a global batch of {} ({} x {} rank(s)), this run has {} ({} x {} "
          "rank(s))",
          origin, theirs, ck.batch_size(), ck.world_size(), ours, options_.batch_size,
          job_.size()));
    }
    differs("the seed", std::to_string(ck.seed()), std::to_string(options_.train.seed));
    // An average goes on with its decay; dropping it would silently change what the run reports.
    // (Switching one on where the checkpoint has none starts it there.)
    if (ck.average().parameter_size() > 0) {
      const auto decay_text = [](float d) { return d > 0 ? fmt::format("{:g}", d) : "0 (none)"; };
      differs("--ema-decay", decay_text(ck.average().decay()),
              decay_text(average_ ? average_->decay() : 0.f));
    }
    restore_checkpoint(ck, model_, &optimizer_, origin, average_ ? &*average_ : nullptr);
    return ck;
  });
  options_.train.start_epoch = checkpoint.epoch();
  options_.train.start_step_in_epoch = checkpoint.step_in_epoch();
  options_.train.start_step = checkpoint.step();
  if (job_.is_root()) {
    notice_(fmt::format("resuming job '{}' from {} (epoch {}, step {})", options_.job_id, origin,
                        checkpoint.epoch() + 1, checkpoint.step()));
  }
}

TrainSummary TrainingSession::run(const Dataset& train, const Dataset& test,
                                  TrainObserver* progress) {
  std::optional<DataParallel> group;
  if (job_.comm() != nullptr) group.emplace(*job_.comm(), reducer_ ? &*reducer_ : nullptr);

  // Reporting and checkpointing, in the background.
  std::unique_ptr<CoordinatorReporter> reporter;
  if (options_.coordinator) {
    pb::RegisterRequest identity;
    identity.set_job_id(options_.job_id);
    identity.set_rank(job_.rank());
    identity.set_world_size(job_.size());
    identity.set_host(host_name());
    identity.set_pid(::getpid());
    for (std::string& arg : command_line()) identity.add_command_line(std::move(arg));
    reporter = std::make_unique<CoordinatorReporter>(*options_.coordinator, identity,
                                                     CoordinatorReporter::Options{}, warn_);
  }
  std::unique_ptr<CheckpointSink> sink;
  if (job_.is_root() && reporter) {
    sink = std::make_unique<CoordinatorCheckpointSink>(*reporter);
  } else if (job_.is_root() && !options_.checkpoint_dir.empty()) {
    sink = std::make_unique<LocalCheckpointSink>(
        options_.checkpoint_dir,
        CheckpointStore::Options{.keep_last = options_.keep_checkpoints,
                                 .max_bytes = uint64_t{1} << 40},
        warn_);
  }
  TrainingHooks hooks({.job_id = options_.job_id,
                       .rank = job_.rank(),
                       .world_size = job_.size(),
                       .batch_size = options_.batch_size,
                       .seed = options_.train.seed,
                       .dataset = train.name,
                       .checkpoint_every = options_.checkpoint_every,
                       .start_epoch = options_.train.start_epoch,
                       .start_step_in_epoch = options_.train.start_step_in_epoch,
                       .start_step = options_.train.start_step,
                       .average = average_ ? &*average_ : nullptr},
                      model_, optimizer_, job_.is_root() ? progress : nullptr, reporter.get(),
                      sink.get());

  Trainer trainer(model_, optimizer_, stream_, group ? &*group : nullptr);
  trainer.set_weight_average(average_ ? &*average_ : nullptr);
  std::unique_ptr<Timeline> timeline;
  if (!options_.trace_path.empty()) {
    timeline = std::make_unique<Timeline>(options_.trace_steps, job_.rank());
    trainer.set_timeline(timeline.get());
    if (reducer_) reducer_->set_timeline(timeline.get());
  }
  // The timeline is written however training ends: a failed run's last steps are the interesting
  // ones. Failing to write it is reported, not fatal.
  const auto write_timeline = [&] {
    if (!timeline) return;
    if (reducer_) reducer_->set_timeline(nullptr);
    const std::string path = timeline_path(options_.trace_path, job_.rank(), job_.size());
    try {
      write_file_atomically(path, timeline->json());
    } catch (const Error& e) {
      warn_(fmt::format("--trace: {}", e.what()));
    }
  };
  TrainSummary summary;
  try {
    summary = trainer.fit(train, options_.train, &hooks, &test);
  } catch (...) {
    write_timeline();
    throw;
  }
  write_timeline();
  if (job_.size() > 1) {
    verify_identical_parameters(*job_.comm(), model_, "after training");
    if (average_) {
      // The average is what gets evaluated and saved beside the weights: it must agree too.
      const AveragedWeights averaged(&*average_);
      verify_identical_parameters(*job_.comm(), model_,
                                  "after training (their --ema-decay average)");
    }
  }
  if (summary.stopped) {
    hooks.checkpoint_final(std::nullopt);  // preempted: where it stopped, without evaluating
  } else {
    if (!summary.test) {
      const AveragedWeights averaged(average_ ? &*average_ : nullptr);
      summary.test =
          evaluate(model_, stream_, test, group ? &*group : nullptr, options_.train.test_flip);
    }
    hooks.checkpoint_final(summary.test->confusion.accuracy());  // stopped mid-epoch (max_steps)
  }

  const bool reachable = !reporter || reporter->stats().connected;
  const std::string store = options_.coordinator
                                ? fmt::format("coordinator {}", options_.coordinator->target)
                                : fmt::format("'{}'", options_.checkpoint_dir);
  const double checkpoint_seconds = summary.stopped ? kPreemptedCheckpointFlushSeconds
                                    : reachable     ? kCheckpointFlushSeconds
                                                    : kCheckpointFlushAwaySeconds;
  const double record_seconds = summary.stopped ? kPreemptedRecordFlushSeconds
                                : reachable     ? kRecordFlushSeconds
                                                : kRecordFlushAwaySeconds;
  if (sink && !sink->flush(checkpoint_seconds)) {
    unstored_ = fmt::format("the last checkpoint could not be stored at {}", store);
    warn_(unstored_);
  }
  if (reporter && !reporter->flush(record_seconds)) {
    warn_(fmt::format("{} step records could not be delivered",
                      reporter->stats().dropped + reporter->queued()));
  }
  if (summary.stopped) {
    if (job_.is_root() && !sink) {
      warn_("stopped early with no --coordinator or --checkpoint-dir: nothing to resume from");
    }
    return summary;
  }
  if (job_.is_root() && !options_.save_path.empty()) {
    save_final(
        make_checkpoint(model_, &optimizer_, hooks.position(), average_ ? &*average_ : nullptr),
        sink && unstored_.empty() ? store : std::string());
  }
  return summary;
}

void TrainingSession::save_final(const pb::Checkpoint& checkpoint, const std::string& stored_at) {
  try {
    save_checkpoint(checkpoint, options_.save_path);
    return;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kIo) throw;  // refused before any work: nothing to rescue
    if (!stored_at.empty()) {
      throw Error::io(fmt::format("{}; the trained model is stored at {} (checkpoint of step {})",
                                  e.what(), stored_at, checkpoint.step()));
    }
    // Nothing else holds the result: keep it where there may be room.
    const std::string rescue = (std::filesystem::temp_directory_path() /
                                fmt::format("convoy-{}-{}.ckpt", options_.job_id, ::getpid()))
                                   .string();
    try {
      save_checkpoint(checkpoint, rescue);
    } catch (const Error&) {
      throw Error::io(fmt::format("{}; nor could it be kept at '{}'", e.what(), rescue));
    }
    throw Error::io(
        fmt::format("{}; the trained model was kept at '{}' instead", e.what(), rescue));
  }
}

void TrainingSession::check_stored() const {
  if (!unstored_.empty()) throw Error::unavailable(unstored_);
}

}  // namespace convoy
