// convoy train: build the model, train it (alone or as one rank of an MPI job), evaluate it,
// report, optionally save a checkpoint.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "checkpoint_sink.h"
#include "command_support.h"
#include "coordinator_client.h"
#include "coordinator_reporter.h"
#include "crc32.h"
#include "data_parallel.h"
#include "job.h"
#include "metrics_store.h"
#include "progress.h"
#include "replica_sync.h"
#include "report.h"
#include "trainer.h"
#include "training_hooks.h"

namespace convoy {

namespace {

// Everything that must be equal on every rank for N ranks to train one model.
JobFingerprint fingerprint(const TrainCommand& cmd, const pb::ModelSpec& spec, const Dataset& train,
                           const Dataset& test) {
  return {
      {"convoy version", "0.1.0"},
      {"--model", fmt::format("{} (spec crc {:08x})", cmd.model, crc32(spec.ShortDebugString()))},
      {"--dataset", train.name},
      {"training samples", std::to_string(train.count())},
      {"test samples", std::to_string(test.count())},
      {"--batch-size", std::to_string(cmd.batch_size)},
      {"--epochs", std::to_string(cmd.epochs)},
      {"--max-steps", std::to_string(cmd.max_steps)},
      {"--lr", fmt::format("{}", cmd.lr)},
      {"--lr-schedule", cmd.lr_schedule},
      {"--warmup-epochs", fmt::format("{}", cmd.warmup_epochs)},
      {"--lr-step-epochs", std::to_string(cmd.lr_step_epochs)},
      {"--lr-gamma", fmt::format("{}", cmd.lr_gamma)},
      {"--optimizer", cmd.optimizer},
      {"--beta1", fmt::format("{}", cmd.beta1)},
      {"--beta2", fmt::format("{}", cmd.beta2)},
      {"--adam-epsilon", fmt::format("{}", cmd.adam_epsilon)},
      {"--random-crop", std::to_string(cmd.random_crop)},
      {"--flip", cmd.flip ? "on" : "off"},
      {"--no-augment", cmd.no_augment ? "on" : "off"},
      {"--momentum", fmt::format("{}", cmd.momentum)},
      {"--nesterov", cmd.nesterov ? "on" : "off"},
      {"--weight-decay", fmt::format("{}", cmd.weight_decay)},
      {"--seed", std::to_string(cmd.seed)},
      {"--bucket-mb", fmt::format("{}", cmd.bucket_mb)}};
}

// The model's augmentation, overridden by --random-crop, --flip and --no-augment.
Augmentation resolve_augmentation(const TrainCommand& cmd, const pb::ModelSpec& spec) {
  Augmentation a = Augmentation::from_spec(spec, cmd.model);
  if (cmd.random_crop >= 0) a.crop_padding = cmd.random_crop;
  if (cmd.flip) a.flip = true;
  if (cmd.no_augment) a = {};
  return a;
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

// The job a run reports as, unless --job-id says otherwise: the model's name.
std::string default_job_id(const TrainCommand& cmd, const pb::ModelSpec& spec) {
  std::string id =
      spec.name().empty() ? std::filesystem::path(cmd.model).stem().string() : spec.name();
  for (char& c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return valid_job_id(id) ? id : "convoy";
}

// --resume: rank 0 fetches the job's latest checkpoint (from the coordinator or the local
// directory), every rank gets its bytes, checks it belongs to this run, and restores from it.
// Without a checkpoint the run starts from the beginning.
void resume(const TrainCommand& cmd, Job& job, const pb::ModelSpec& spec, Model& model,
            Optimizer& optimizer, TrainOptions& options) {
  const std::string job_id = cmd.job_id.empty() ? default_job_id(cmd, spec) : cmd.job_id;
  std::string bytes, source;
  job.agree([&] {
    if (!job.is_root()) return 0;
    if (!cmd.coordinator.empty()) {
      CoordinatorClient client(
          coordinator_address(cmd.coordinator, cmd.auth_token_file, cmd.tls_ca));
      try {
        pb::CheckpointHeader header;
        bytes = client.download(job_id, "latest", &header);
        source = fmt::format("coordinator {} checkpoint '{}'", cmd.coordinator, header.name());
      } catch (const CoordinatorError& e) {
        if (e.code() != grpc::StatusCode::NOT_FOUND) {
          throw InputError(fmt::format("--resume: {}", e.what()));
        }
      }
    } else {
      try {
        CheckpointStore store(cmd.checkpoint_dir, {});
        const pb::CheckpointInfo info = store.find("latest");
        std::ifstream in(store.path(info.name()), std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        source = store.path(info.name());
      } catch (const CheckpointStoreError& e) {
        if (e.kind() != CheckpointStoreError::Kind::kNotFound) {
          throw InputError(fmt::format("--checkpoint-dir: {}", e.what()));
        }
      }
    }
    return 0;
  });
  if (job.comm() != nullptr) {
    broadcast_string(*job.comm(), bytes);
    broadcast_string(*job.comm(), source);
  }
  if (bytes.empty()) {
    if (job.is_root()) {
      fmt::print(stderr, "convoy: --resume: no checkpoint of job '{}' yet; starting afresh\n",
                 job_id);
    }
    return;
  }
  const pb::Checkpoint checkpoint = job.agree([&] {
    pb::Checkpoint ck = parse_checkpoint(bytes, source);
    auto differs = [&](const std::string& what, const std::string& theirs,
                       const std::string& ours) {
      if (theirs != ours) {
        throw InputError(fmt::format("--resume: {} was written with {} {}, this run has {}", source,
                                     what, theirs, ours));
      }
    };
    if (ck.model().ShortDebugString() != spec.ShortDebugString()) {
      throw InputError(fmt::format("--resume: {} holds a different model", source));
    }
    differs("--batch-size", std::to_string(ck.batch_size()), std::to_string(cmd.batch_size));
    differs("--seed", std::to_string(ck.seed()), std::to_string(cmd.seed));
    differs("a world size of", std::to_string(ck.world_size()), std::to_string(job.size()));
    return ck;
  });
  restore_checkpoint(checkpoint, model, &optimizer, source);
  options.start_epoch = checkpoint.epoch();
  options.start_step_in_epoch = checkpoint.step_in_epoch();
  options.start_step = checkpoint.step();
  if (job.is_root()) {
    fmt::print(stderr, "convoy: resuming job '{}' from {} (epoch {}, step {})\n", job_id, source,
               checkpoint.epoch() + 1, checkpoint.step());
  }
}

struct Inputs {
  pb::ModelSpec spec;
  Dataset train, test;
};

int train_job(const TrainCommand& cmd, Job& job) {
  const int threads = job.threads(cmd.threads);
  const auto [spec, train, test] = job.agree([&] {
    Inputs in;
    in.spec = load_model_spec(cmd.model, "--model");
    const ModelPlan plan = plan_model(in.spec, cmd.model);
    if (!cmd.save.empty() && job.is_root()) check_writable(cmd.save, "--save");
    const bool has_store = !cmd.coordinator.empty() || !cmd.checkpoint_dir.empty();
    if (cmd.resume && !has_store) {
      throw InputError("--resume: needs --coordinator or --checkpoint-dir");
    }
    if (cmd.checkpoint_every > 0 && !has_store) {
      throw InputError("--checkpoint-every: needs --coordinator or --checkpoint-dir");
    }
    if (!cmd.coordinator.empty() && !cmd.checkpoint_dir.empty()) {
      throw InputError("--checkpoint-dir: not with --coordinator, which stores the checkpoints");
    }
    if (!cmd.coordinator.empty()) {
      coordinator_address(cmd.coordinator, cmd.auth_token_file, cmd.tls_ca);  // readable files
    }
    if (!cmd.job_id.empty() && !valid_job_id(cmd.job_id)) {
      throw InputError(fmt::format(
          "--job-id: '{}' is not allowed (1-64 of [A-Za-z0-9._-], not starting with '.')",
          cmd.job_id));
    }
    in.train = load_split(cmd.data, Split::kTrain, plan, cmd.model);
    in.test = load_split(cmd.data, Split::kTest, plan, cmd.model);
    check_batch_fits(cmd.batch_size * job.size(), in.train);
    return in;
  });
  if (job.comm() != nullptr) {
    check_same_configuration(*job.comm(), fingerprint(cmd, spec, train, test));
  }

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Model model(spec, cmd.batch_size, engine, Model::Mode::kTrain, cmd.model);
  model.initialize(cmd.seed);
  Optimizer optimizer(model.parameters(), {.kind = OptimizerConfig::parse_kind(cmd.optimizer),
                                           .learning_rate = static_cast<float>(cmd.lr),
                                           .momentum = static_cast<float>(cmd.momentum),
                                           .weight_decay = static_cast<float>(cmd.weight_decay),
                                           .nesterov = cmd.nesterov,
                                           .beta1 = static_cast<float>(cmd.beta1),
                                           .beta2 = static_cast<float>(cmd.beta2),
                                           .epsilon = static_cast<float>(cmd.adam_epsilon)});
  std::optional<GradientReducer> reducer;
  if (job.size() > 1) {
    broadcast_parameters(*job.comm(), model);
    verify_identical_parameters(*job.comm(), model, "after the initial broadcast");
    reducer.emplace(*job.comm(), model, stream, static_cast<size_t>(cmd.bucket_mb * (1 << 20)));
  }
  TrainOptions options{cmd.epochs, cmd.max_steps, cmd.seed,
                       LrSchedule{LrSchedule::parse_kind(cmd.lr_schedule), cmd.lr,
                                  cmd.warmup_epochs, cmd.lr_step_epochs, cmd.lr_gamma}};
  options.augmentation = resolve_augmentation(cmd, spec);
  if (cmd.resume) resume(cmd, job, spec, model, optimizer, options);

  int64_t parameter_count = 0;
  for (const Parameter* p : model.parameters()) parameter_count += p->value.size();
  if (job.is_root() && cmd.log_json) {
    const nlohmann::json start = {{"event", "start"},
                                  {"model", spec.name().empty() ? cmd.model : spec.name()},
                                  {"parameters", parameter_count},
                                  {"dataset", train.name},
                                  {"train_samples", train.count()},
                                  {"test_samples", test.count()},
                                  {"epochs", cmd.epochs},
                                  {"batch_size", cmd.batch_size},
                                  {"global_batch_size", cmd.batch_size * job.size()},
                                  {"lr", cmd.lr},
                                  {"lr_schedule", cmd.lr_schedule},
                                  {"optimizer", cmd.optimizer},
                                  {"augment", options.augmentation.str()},
                                  {"momentum", cmd.momentum},
                                  {"weight_decay", cmd.weight_decay},
                                  {"seed", cmd.seed},
                                  {"world_size", job.size()},
                                  {"threads", threads}};
    fmt::print("{}\n", start.dump());
    std::fflush(stdout);
  } else if (job.is_root()) {
    fmt::print(stderr,
               "convoy: training {} ({} parameters) on {} ({} train / {} test samples), "
               "batch {} x {} rank(s), {} thread(s) per rank\n",
               cmd.model, parameter_count, train.name, train.count(), test.count(), cmd.batch_size,
               job.size(), threads);
  }

  const bool bar =
      cmd.progress == "bar" || (cmd.progress == "auto" && ::isatty(STDERR_FILENO) == 1);
  ProgressReporter progress({.json = cmd.log_json,
                             .terminal = bar,
                             .quiet = cmd.progress == "none",
                             .epochs = cmd.epochs});
  std::optional<DataParallel> group;
  if (job.comm() != nullptr) group.emplace(*job.comm(), reducer ? &*reducer : nullptr);

  // Reporting and checkpointing, in the background.
  const std::string job_id = cmd.job_id.empty() ? default_job_id(cmd, spec) : cmd.job_id;
  const auto warn = [rank = job.rank(), size = job.size()](const std::string& message) {
    fmt::print(stderr, "convoy: {}{}\n", size > 1 ? fmt::format("rank {}: ", rank) : "", message);
  };
  std::unique_ptr<CoordinatorReporter> reporter;
  if (!cmd.coordinator.empty()) {
    pb::RegisterRequest identity;
    identity.set_job_id(job_id);
    identity.set_rank(job.rank());
    identity.set_world_size(job.size());
    identity.set_host(host_name());
    identity.set_pid(::getpid());
    reporter = std::make_unique<CoordinatorReporter>(
        coordinator_address(cmd.coordinator, cmd.auth_token_file, cmd.tls_ca), identity,
        CoordinatorReporter::Options{}, warn);
  }
  std::unique_ptr<CheckpointSink> sink;
  if (job.is_root() && reporter) {
    sink = std::make_unique<CoordinatorCheckpointSink>(*reporter);
  } else if (job.is_root() && !cmd.checkpoint_dir.empty()) {
    sink = std::make_unique<LocalCheckpointSink>(
        cmd.checkpoint_dir,
        CheckpointStore::Options{static_cast<size_t>(cmd.keep_checkpoints), uint64_t{1} << 40},
        warn);
  }
  TrainingHooks hooks(
      {job_id, job.rank(), job.size(), cmd.batch_size, cmd.seed, train.name, cmd.checkpoint_every},
      model, optimizer, job.is_root() ? &progress : nullptr, reporter.get(), sink.get());

  Trainer trainer(model, optimizer, stream, group ? &*group : nullptr);
  TrainSummary summary = trainer.fit(train, options, &hooks, &test);
  if (job.size() > 1) verify_identical_parameters(*job.comm(), model, "after training");
  if (!summary.test) summary.test = evaluate(model, stream, test, group ? &*group : nullptr);
  // Deliver what is still queued before leaving: generously while the coordinator answers (a
  // large checkpoint may be on its way), briefly while it is away.
  const bool reachable = !reporter || reporter->stats().connected;
  if (sink && !sink->flush(reachable ? 300 : 10)) {
    warn("the last checkpoint could not be stored in time");
  }
  if (reporter && !reporter->flush(reachable ? 30 : 5)) {
    warn(fmt::format("{} step records could not be delivered",
                     reporter->stats().dropped + reporter->queued()));
  }

  if (!job.is_root()) return 0;
  if (!cmd.save.empty())
    save_checkpoint(make_checkpoint(model, &optimizer, hooks.position()), cmd.save);
  print_final_report(*summary.test, test.class_names, &summary, job.size(), cmd.log_json);
  if (!cmd.save.empty() && !cmd.log_json) fmt::print("checkpoint saved to {}\n", cmd.save);
  return 0;
}

}  // namespace

int run_train(const TrainCommand& cmd) {
  return run_job([&](Job& job) { return train_job(cmd, job); });
}

}  // namespace convoy
