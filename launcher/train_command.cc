// convoy train: build the model, train it (alone or as one rank of an MPI job), evaluate it,
// report, optionally save a checkpoint.
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "command_support.h"
#include "crc32.h"
#include "data_parallel.h"
#include "job.h"
#include "progress.h"
#include "replica_sync.h"
#include "report.h"
#include "trainer.h"

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
      {"--momentum", fmt::format("{}", cmd.momentum)},
      {"--nesterov", cmd.nesterov ? "on" : "off"},
      {"--weight-decay", fmt::format("{}", cmd.weight_decay)},
      {"--seed", std::to_string(cmd.seed)},
      {"--bucket-mb", fmt::format("{}", cmd.bucket_mb)}};
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
  Sgd sgd(model.parameters(), {static_cast<float>(cmd.lr), static_cast<float>(cmd.momentum),
                               static_cast<float>(cmd.weight_decay), cmd.nesterov});
  std::optional<GradientReducer> reducer;
  if (job.size() > 1) {
    broadcast_parameters(*job.comm(), model);
    verify_identical_parameters(*job.comm(), model, "after the initial broadcast");
    reducer.emplace(*job.comm(), model, stream, static_cast<size_t>(cmd.bucket_mb * (1 << 20)));
  }

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
  Trainer trainer(model, sgd, stream, group ? &*group : nullptr);
  const TrainSummary summary =
      trainer.fit(train,
                  {cmd.epochs, cmd.max_steps, cmd.seed,
                   LrSchedule{LrSchedule::parse_kind(cmd.lr_schedule), cmd.lr, cmd.warmup_epochs,
                              cmd.lr_step_epochs, cmd.lr_gamma}},
                  job.is_root() ? &progress : nullptr, &test);
  if (job.size() > 1) verify_identical_parameters(*job.comm(), model, "after training");

  if (!job.is_root()) return 0;
  if (!cmd.save.empty()) {
    save_checkpoint(make_checkpoint(model, &sgd,
                                    {summary.epochs, summary.steps, cmd.seed,
                                     static_cast<int32_t>(cmd.batch_size), train.name}),
                    cmd.save);
  }
  print_final_report(*summary.test, test.class_names, &summary, job.size(), cmd.log_json);
  if (!cmd.save.empty() && !cmd.log_json) fmt::print("checkpoint saved to {}\n", cmd.save);
  return 0;
}

}  // namespace

int run_train(const TrainCommand& cmd) {
  return run_job([&](Job& job) { return train_job(cmd, job); });
}

}  // namespace convoy
