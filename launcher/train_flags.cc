#include "launcher/train_flags.h"

#include <fmt/format.h>

#include "core/crc32.h"
#include "launcher/cli_options.h"
#include "launcher/command_support.h"

namespace convoy {

namespace {

using Ref = TrainFlag::Ref;

// One row per flag. Keep the README's table of `convoy train` flags in this order.
std::vector<TrainFlag> make_table() {
  const CLI::Validator& positive = positive_number();
  const CLI::Validator& non_negative = non_negative_number();
  return {
      {"--limit-train", "Train on the first N training samples only",
       [](TrainCommand& c) -> Ref { return &c.data.limit_train; }, positive, false, true},
      {"--epochs", "Passes over the training set", [](TrainCommand& c) -> Ref { return &c.epochs; },
       positive, true, true, "epochs"},
      {"--batch-size", "Samples per step and rank",
       [](TrainCommand& c) -> Ref { return &c.batch_size; }, positive, true, true, "batch_size"},
      {"--lr", "Learning rate", [](TrainCommand& c) -> Ref { return &c.lr; }, positive, true, true,
       "lr"},
      {"--lr-schedule", "Learning-rate schedule",
       [](TrainCommand& c) -> Ref { return &c.lr_schedule; },
       CLI::IsMember({"constant", "step", "cosine"}), true, true, "lr_schedule"},
      {"--warmup-epochs", "Linear learning-rate warm-up",
       [](TrainCommand& c) -> Ref { return &c.warmup_epochs; }, non_negative, true, true,
       "warmup_epochs"},
      {"--lr-step-epochs", "step schedule: decay every N epochs",
       [](TrainCommand& c) -> Ref { return &c.lr_step_epochs; }, positive, true, true},
      {"--lr-gamma", "step schedule: decay factor",
       [](TrainCommand& c) -> Ref { return &c.lr_gamma; }, positive, true, true},
      {"--optimizer", "sgd, adam or adamw (decoupled weight decay)",
       [](TrainCommand& c) -> Ref { return &c.optimizer; }, CLI::IsMember({"sgd", "adam", "adamw"}),
       true, true, "optimizer"},
      {"--beta1", "Adam: decay of the first moment",
       [](TrainCommand& c) -> Ref { return &c.beta1; }, CLI::Range(0.0, 0.999999), true, true},
      {"--beta2", "Adam: decay of the second moment",
       [](TrainCommand& c) -> Ref { return &c.beta2; }, CLI::Range(0.0, 0.999999), true, true},
      {"--adam-epsilon", "Adam: added to the denominator",
       [](TrainCommand& c) -> Ref { return &c.adam_epsilon; }, positive, true, true},
      {"--random-crop", "Augment: random crop with this much zero padding (default: the model's)",
       [](TrainCommand& c) -> Ref { return &c.random_crop; },
       CLI::Range(int64_t{0}, int64_t{1} << 20), false, true},
      {"--flip", "Augment: random horizontal flips", [](TrainCommand& c) -> Ref { return &c.flip; },
       std::nullopt, false, true},
      {"--no-augment", "No augmentation, whatever the model says",
       [](TrainCommand& c) -> Ref { return &c.no_augment; }, std::nullopt, false, true},
      {"--momentum", "SGD momentum", [](TrainCommand& c) -> Ref { return &c.momentum; },
       non_negative, true, true, "momentum"},
      {"--nesterov", "Use Nesterov momentum", [](TrainCommand& c) -> Ref { return &c.nesterov; },
       std::nullopt, false, true},
      {"--weight-decay", "Weight decay (L2 in the gradient; decoupled for adamw)",
       [](TrainCommand& c) -> Ref { return &c.weight_decay; }, non_negative, true, true,
       "weight_decay"},
      {"--seed", "Seed for initialisation and shuffling",
       [](TrainCommand& c) -> Ref { return &c.seed; }, std::nullopt, true, true, "seed"},
      {"--max-steps", "Stop after N optimizer steps",
       [](TrainCommand& c) -> Ref { return &c.max_steps; }, positive, false, true},
      {"--bucket-mb", "Gradient all-reduce bucket size (MiB)",
       [](TrainCommand& c) -> Ref { return &c.bucket_mb; }, positive, true, true},
      {"--save", "Write a checkpoint here when training ends",
       [](TrainCommand& c) -> Ref { return &c.save; }, std::nullopt, false},
      {"--coordinator", "host:port of a convoy coordinator to report to and store checkpoints at",
       [](TrainCommand& c) -> Ref { return &c.coordinator; }, std::nullopt, false},
      {"--auth-token-file", "Bearer token for the coordinator",
       [](TrainCommand& c) -> Ref { return &c.auth_token_file; }, std::nullopt, false},
      {"--tls-ca", "PEM certificate to verify a TLS coordinator with",
       [](TrainCommand& c) -> Ref { return &c.tls_ca; }, std::nullopt, false},
      {"--job-id", "Job name at the coordinator (default: the model's)",
       [](TrainCommand& c) -> Ref { return &c.job_id; }, std::nullopt, false},
      {"--checkpoint-every",
       "Also checkpoint every N steps (checkpoints follow every epoch anyway)",
       [](TrainCommand& c) -> Ref { return &c.checkpoint_every; }, positive, false},
      {"--checkpoint-dir", "Without --coordinator: keep checkpoints in this directory",
       [](TrainCommand& c) -> Ref { return &c.checkpoint_dir; }, std::nullopt, false},
      {"--keep-checkpoints",
       "With --checkpoint-dir: newest checkpoints kept (plus the most accurate)",
       [](TrainCommand& c) -> Ref { return &c.keep_checkpoints; }, positive, true},
      {"--resume", "Continue from the latest checkpoint of the coordinator or --checkpoint-dir",
       [](TrainCommand& c) -> Ref { return &c.resume; }, std::nullopt, false},
      {"--log-json", "JSON lines on stdout", [](TrainCommand& c) -> Ref { return &c.log_json; },
       std::nullopt, false},
      {"--progress",
       "Progress on stderr: a redrawn bar, periodic lines, or none (auto: a bar on a terminal, "
       "lines otherwise)",
       [](TrainCommand& c) -> Ref { return &c.progress; },
       CLI::IsMember({"auto", "bar", "lines", "none"}), true},
  };
}

// The value as the fingerprint compares it (and as "ranks disagree on" messages show it).
std::string text(const Ref& ref) {
  return std::visit(
      [](auto* value) -> std::string {
        if constexpr (std::is_same_v<decltype(value), bool*>) {
          return *value ? "on" : "off";
        } else {
          return fmt::format("{}", *value);
        }
      },
      ref);
}

}  // namespace

const std::vector<TrainFlag>& train_flags() {
  static const std::vector<TrainFlag> table = make_table();
  return table;
}

void add_train_flags(CLI::App& app, TrainCommand& cmd) {
  for (const TrainFlag& flag : train_flags()) {
    CLI::Option* option = std::visit(
        [&](auto* value) -> CLI::Option* {
          if constexpr (std::is_same_v<decltype(value), bool*>) {
            return app.add_flag(flag.name, *value, flag.help);
          } else {
            return app.add_option(flag.name, *value, flag.help);
          }
        },
        flag.field(cmd));
    if (flag.check) option->check(*flag.check);
    if (flag.show_default && option->get_expected_min() > 0) option->capture_default_str();
  }
}

JobFingerprint train_fingerprint(const TrainCommand& cmd, const pb::ModelSpec& spec,
                                 const Dataset& train, const Dataset& test) {
  TrainCommand copy = cmd;  // the table's accessors take a mutable command
  JobFingerprint fields = {
      {"convoy version", "0.1.0"},
      {"--model", fmt::format("{} (spec crc {:08x})", cmd.model, crc32(spec.ShortDebugString()))},
      {"--dataset", train.name},
      {"training samples", std::to_string(train.count())},
      {"test samples", std::to_string(test.count())}};
  for (const TrainFlag& flag : train_flags()) {
    if (flag.ranks_agree) fields.emplace_back(flag.name, text(flag.field(copy)));
  }
  return fields;
}

TrainingSessionOptions training_session_options(const TrainCommand& cmd, const pb::ModelSpec& spec,
                                                const std::string& dataset) {
  Augmentation augmentation = Augmentation::from_spec(spec, cmd.model);
  if (cmd.random_crop >= 0) augmentation.crop_padding = cmd.random_crop;
  if (cmd.flip) augmentation.flip = true;
  if (cmd.no_augment) augmentation = {};
  return {
      .job_id = cmd.job_id.empty() ? default_job_id(spec, cmd.model) : cmd.job_id,
      .model_source = cmd.model,
      .batch_size = cmd.batch_size,
      .bucket_mb = cmd.bucket_mb,
      .optimizer = {.kind = OptimizerConfig::parse_kind(cmd.optimizer),
                    .learning_rate = static_cast<float>(cmd.lr),
                    .momentum = static_cast<float>(cmd.momentum),
                    .weight_decay = static_cast<float>(cmd.weight_decay),
                    .nesterov = cmd.nesterov,
                    .beta1 = static_cast<float>(cmd.beta1),
                    .beta2 = static_cast<float>(cmd.beta2),
                    .epsilon = static_cast<float>(cmd.adam_epsilon)},
      .train = {.epochs = cmd.epochs,
                .max_steps = cmd.max_steps,
                .seed = cmd.seed,
                .schedule = {LrSchedule::parse_kind(cmd.lr_schedule), cmd.lr, cmd.warmup_epochs,
                             cmd.lr_step_epochs, cmd.lr_gamma},
                .augmentation = augmentation},
      .dataset = dataset,
      .coordinator = cmd.coordinator.empty()
                         ? std::nullopt
                         : std::optional(coordinator_address(cmd.coordinator, cmd.auth_token_file,
                                                             cmd.tls_ca)),
      .checkpoint_dir = cmd.checkpoint_dir,
      .keep_checkpoints = static_cast<size_t>(cmd.keep_checkpoints),
      .checkpoint_every = cmd.checkpoint_every,
      .save_path = cmd.save,
  };
}

nlohmann::json train_flags_event(const TrainCommand& cmd) {
  TrainCommand copy = cmd;
  nlohmann::json event = nlohmann::json::object();
  for (const TrainFlag& flag : train_flags()) {
    if (flag.event_key == nullptr) continue;
    std::visit([&](auto* value) { event[flag.event_key] = *value; }, flag.field(copy));
  }
  return event;
}

}  // namespace convoy
