#include "launcher/train_flags.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/crc32.h"
#include "core/error.h"
#include "launcher/cli_options.h"
#include "launcher/command_support.h"

namespace convoy {

namespace {

using Ref = TrainFlag::Ref;

// One row per flag, designated: the bools say what they mean.
std::vector<TrainFlag> make_table() {
  const CLI::Validator& positive = positive_number();
  const CLI::Validator& non_negative = non_negative_number();
  return {
      {.name = "--limit-train",
       .help = "Train on the first N training samples only",
       .field = [](TrainCommand& c) -> Ref { return &c.data.limit_train; },
       .check = positive,
       .show_default = false,
       .ranks_agree = true},
      {.name = "--epochs",
       .help = "Passes over the training set",
       .field = [](TrainCommand& c) -> Ref { return &c.epochs; },
       .check = positive,
       .ranks_agree = true,
       .event_key = "epochs"},
      {.name = "--batch-size",
       .help = "Samples per step and rank",
       .field = [](TrainCommand& c) -> Ref { return &c.batch_size; },
       .check = positive,
       .ranks_agree = true,
       .event_key = "batch_size"},
      {.name = "--global-batch-size",
       .help = "Samples per step of all ranks together (instead of --batch-size; the ranks must "
               "divide it): a job can then resume on another number of ranks",
       .field = [](TrainCommand& c) -> Ref { return &c.global_batch_size; },
       .check = positive,
       .show_default = false,
       .ranks_agree = true},
      {.name = "--lr",
       .help = "Learning rate",
       .field = [](TrainCommand& c) -> Ref { return &c.lr; },
       .check = positive,
       .ranks_agree = true,
       .event_key = "lr"},
      {.name = "--lr-schedule",
       .help = "Learning-rate schedule",
       .field = [](TrainCommand& c) -> Ref { return &c.lr_schedule; },
       .check = CLI::IsMember({"constant", "step", "cosine"}),
       .ranks_agree = true,
       .event_key = "lr_schedule"},
      {.name = "--warmup-epochs",
       .help = "Linear learning-rate warm-up",
       .field = [](TrainCommand& c) -> Ref { return &c.warmup_epochs; },
       .check = non_negative,
       .ranks_agree = true,
       .event_key = "warmup_epochs"},
      {.name = "--lr-step-epochs",
       .help = "step schedule: decay every N epochs",
       .field = [](TrainCommand& c) -> Ref { return &c.lr_step_epochs; },
       .check = positive,
       .ranks_agree = true},
      {.name = "--lr-gamma",
       .help = "step schedule: decay factor",
       .field = [](TrainCommand& c) -> Ref { return &c.lr_gamma; },
       .check = positive,
       .ranks_agree = true},
      {.name = "--optimizer",
       .help = "sgd, adam or adamw (decoupled weight decay)",
       .field = [](TrainCommand& c) -> Ref { return &c.optimizer; },
       .check = CLI::IsMember({"sgd", "adam", "adamw"}),
       .ranks_agree = true,
       .event_key = "optimizer"},
      {.name = "--beta1",
       .help = "Adam: decay of the first moment",
       .field = [](TrainCommand& c) -> Ref { return &c.beta1; },
       .check = CLI::Range(0.0, 0.999999),
       .ranks_agree = true},
      {.name = "--beta2",
       .help = "Adam: decay of the second moment",
       .field = [](TrainCommand& c) -> Ref { return &c.beta2; },
       .check = CLI::Range(0.0, 0.999999),
       .ranks_agree = true},
      {.name = "--adam-epsilon",
       .help = "Adam: added to the denominator",
       .field = [](TrainCommand& c) -> Ref { return &c.adam_epsilon; },
       .check = positive,
       .ranks_agree = true},
      {.name = "--random-crop",
       .help = "Augment: random crop with this much zero padding (default: the model's)",
       .field = [](TrainCommand& c) -> Ref { return &c.random_crop; },
       .check = CLI::Range(int64_t{0}, int64_t{1} << 20),
       .show_default = false,
       .ranks_agree = true},
      {.name = "--flip",
       .help = "Augment: random horizontal flips",
       .field = [](TrainCommand& c) -> Ref { return &c.flip; },
       .show_default = false,
       .ranks_agree = true},
      {.name = "--no-augment",
       .help = "No augmentation, whatever the model says",
       .field = [](TrainCommand& c) -> Ref { return &c.no_augment; },
       .show_default = false,
       .ranks_agree = true},
      {.name = "--momentum",
       .help = "SGD momentum",
       .field = [](TrainCommand& c) -> Ref { return &c.momentum; },
       .check = non_negative,
       .ranks_agree = true,
       .event_key = "momentum"},
      {.name = "--nesterov",
       .help = "Use Nesterov momentum",
       .field = [](TrainCommand& c) -> Ref { return &c.nesterov; },
       .show_default = false,
       .ranks_agree = true},
      {.name = "--weight-decay",
       .help = "Weight decay (L2 in the gradient; decoupled for adamw)",
       .field = [](TrainCommand& c) -> Ref { return &c.weight_decay; },
       .check = non_negative,
       .ranks_agree = true,
       .event_key = "weight_decay"},
      {.name = "--seed",
       .help = "Seed for initialisation and shuffling",
       .field = [](TrainCommand& c) -> Ref { return &c.seed; },
       .check = unsigned_64(),
       .ranks_agree = true,
       .event_key = "seed"},
      {.name = "--max-steps",
       .help = "Stop after N optimizer steps",
       .field = [](TrainCommand& c) -> Ref { return &c.max_steps; },
       .check = positive,
       .show_default = false,
       .ranks_agree = true},
      {.name = "--bucket-mb",
       .help = "Gradient all-reduce bucket size (MiB)",
       .field = [](TrainCommand& c) -> Ref { return &c.bucket_mb; },
       .check = bucket_mb(),
       .ranks_agree = true},
      {.name = "--save",
       .help = "Write a checkpoint here when training ends",
       .field = [](TrainCommand& c) -> Ref { return &c.save; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--trace",
       .help = "Write a timeline of the last --trace-steps steps here (Chrome trace JSON; with "
               "several ranks, FILE.rankR.json each)",
       .field = [](TrainCommand& c) -> Ref { return &c.trace; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--trace-steps",
       .help = "Steps the --trace timeline keeps (the last ones)",
       .field = [](TrainCommand& c) -> Ref { return &c.trace_steps; },
       .check = positive},
      {.name = "--coordinator",
       .help = "host:port of a convoy coordinator to report to and store checkpoints at",
       .field = [](TrainCommand& c) -> Ref { return &c.coordinator; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--auth-token-file",
       .help = "Bearer token for the coordinator",
       .field = [](TrainCommand& c) -> Ref { return &c.auth_token_file; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--tls-ca",
       .help = "PEM certificate to verify a TLS coordinator with",
       .field = [](TrainCommand& c) -> Ref { return &c.tls_ca; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--job-id",
       .help = "Job name at the coordinator (default: the model's)",
       .field = [](TrainCommand& c) -> Ref { return &c.job_id; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--checkpoint-every",
       .help = "Also checkpoint every N steps (checkpoints follow every epoch anyway)",
       .field = [](TrainCommand& c) -> Ref { return &c.checkpoint_every; },
       .check = positive,
       .show_default = false},
      {.name = "--checkpoint-dir",
       .help = "Without --coordinator: keep checkpoints in this directory",
       .field = [](TrainCommand& c) -> Ref { return &c.checkpoint_dir; },
       .check = non_empty(),
       .show_default = false},
      {.name = "--keep-checkpoints",
       .help = "With --checkpoint-dir: newest checkpoints kept (plus the most accurate)",
       .field = [](TrainCommand& c) -> Ref { return &c.keep_checkpoints; },
       .check = positive},
      {.name = "--resume",
       .help = "Continue from the latest checkpoint of the coordinator or --checkpoint-dir",
       .field = [](TrainCommand& c) -> Ref { return &c.resume; },
       .show_default = false},
      {.name = "--log-json",
       .help = "JSON lines on stdout",
       .field = [](TrainCommand& c) -> Ref { return &c.log_json; },
       .show_default = false},
      {.name = "--precision",
       .help = kPrecisionHelp,
       .field = [](TrainCommand& c) -> Ref { return &c.precision; },
       .check = precision_check(),
       .ranks_agree = true,
       .event_key = "precision"},
      {.name = "--label-smoothing",
       .help = "Train towards (1 - e) on the true class and e / classes on every class",
       .field = [](TrainCommand& c) -> Ref { return &c.label_smoothing; },
       .check = below_one(),
       .ranks_agree = true,
       .event_key = "label_smoothing"},
      {.name = "--ema-decay",
       .help = "Keep an exponential moving average of the weights with this decay per step "
               "(e.g. 0.999), and evaluate and save it; 0: none",
       .field = [](TrainCommand& c) -> Ref { return &c.ema_decay; },
       .check = below_one(),
       .ranks_agree = true,
       .event_key = "ema_decay"},
      {.name = "--test-flip",
       .help = "Evaluate on each test sample and its mirror image (width reversed), averaging "
               "the two predictions",
       .field = [](TrainCommand& c) -> Ref { return &c.test_flip; },
       .show_default = false,
       .ranks_agree = true,
       .event_key = "test_flip"},
      {.name = "--progress",
       .help = "Progress on stderr: a redrawn bar, periodic lines, or none (auto: a bar on a "
               "terminal, lines otherwise)",
       .field = [](TrainCommand& c) -> Ref { return &c.progress; },
       .check = CLI::IsMember({"auto", "bar", "lines", "none"})},
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

CLI::App* add_train_command(CLI::App& app, TrainCommand& cmd) {
  CLI::App* t = app.add_subcommand("train", "Train a model and report test metrics");
  t->add_option("--model", cmd.model, "Built-in model name or a .pbtxt file")->required();
  add_data_flags(t, cmd.data);
  add_threads_flag(t, cmd.threads);
  add_train_flags(*t, cmd);
  t->final_callback([t, &cmd] {
    for (const CLI::Option* option : t->get_options()) {
      if (option->count() > 0) cmd.given.push_back(option->get_name());
    }
  });
  return t;
}

TrainCommand with_model_defaults(const TrainCommand& cmd, const pb::TrainSpec& defaults,
                                 const std::string& model) {
  TrainCommand out = cmd;
  const google::protobuf::Reflection& reflection = *defaults.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection.ListFields(defaults, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    std::string flag = "--" + field->name();
    std::replace(flag.begin(), flag.end(), '_', '-');
    const auto given = [&](const std::string& name) {
      return std::find(cmd.given.begin(), cmd.given.end(), name) != cmd.given.end();
    };
    if (given(flag)) continue;
    // The two batch flags say one thing: either given on the command line sets the batch.
    if ((flag == "--batch-size" || flag == "--global-batch-size") &&
        (given("--batch-size") || given("--global-batch-size"))) {
      continue;
    }
    // The value as its flag would be written, parsed by the flag's own option and check.
    std::vector<std::string> args;
    using Type = google::protobuf::FieldDescriptor;
    switch (field->cpp_type()) {
      case Type::CPPTYPE_BOOL:
        if (reflection.GetBool(defaults, field)) args = {flag};
        break;
      case Type::CPPTYPE_INT64:
        args = {flag, std::to_string(reflection.GetInt64(defaults, field))};
        break;
      case Type::CPPTYPE_DOUBLE:
        args = {flag, fmt::format("{}", reflection.GetDouble(defaults, field))};
        break;
      case Type::CPPTYPE_STRING:
        args = {flag, reflection.GetString(defaults, field)};
        break;
      default:
        CONVOY_CHECK(false && "a TrainSpec field of a type no flag has");
    }
    if (args.empty()) continue;
    CLI::App app("convoy", "convoy");
    add_train_flags(app, out);
    std::reverse(args.begin(), args.end());  // CLI11 wants them reversed
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      throw Error::invalid_input(
          fmt::format("{}: train.{}: {}", model, field->name(), one_line(e)));
    }
  }
  return out;
}

std::string one_line(const CLI::ParseError& error) {
  std::string message = error.what();
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

TrainCommand parse_train_args(const std::vector<std::string>& args) {
  CLI::App app("convoy", "convoy");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  TrainCommand cmd;
  add_train_command(app, cmd);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  reversed.push_back("train");
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw Error::invalid_input(fmt::format("train: {}", one_line(e)));
  }
  return cmd;
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

namespace {
Augmentation train_augmentation(const TrainCommand& cmd, const pb::ModelSpec& spec) {
  Augmentation augmentation = Augmentation::from_spec(spec, cmd.model);
  // Given flags replace the model's augment block: `--random-crop 0` and `--flip=false` turn off
  // what it asks for.
  if (cmd.random_crop >= 0) augmentation.crop_padding = cmd.random_crop;
  if (std::ranges::find(cmd.given, "--flip") != cmd.given.end()) augmentation.flip = cmd.flip;
  if (cmd.no_augment) augmentation = {};
  return augmentation;
}
}  // namespace

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
  // --flip=false and no --flip differ when the model asks for flips.
  fields.emplace_back("augmentation", train_augmentation(cmd, spec).str());
  return fields;
}

TrainingSessionOptions training_session_options(const TrainCommand& cmd, const pb::ModelSpec& spec,
                                                const std::string& dataset) {
  // The average keeps its decay in single precision: 0.99999999 would round to 1, an average
  // that never moves.
  if (static_cast<float>(cmd.ema_decay) >= 1.f) {
    throw Error::invalid_input(fmt::format(
        "--ema-decay: {} rounds to 1 in single precision; at most 0.9999999", cmd.ema_decay));
  }
  const Augmentation augmentation = train_augmentation(cmd, spec);
  return {
      .job_id = cmd.job_id.empty() ? default_job_id(spec, cmd.model) : cmd.job_id,
      .model_source = cmd.model,
      .precision = precision_flag(cmd.precision),
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
                .schedule = {.kind = LrSchedule::parse_kind(cmd.lr_schedule),
                             .base_lr = cmd.lr,
                             .warmup_epochs = cmd.warmup_epochs,
                             .step_epochs = cmd.lr_step_epochs,
                             .gamma = cmd.lr_gamma},
                .augmentation = augmentation,
                .label_smoothing = static_cast<float>(cmd.label_smoothing),
                .test_flip = cmd.test_flip,
                .ema_decay = static_cast<float>(cmd.ema_decay)},
      .dataset = dataset,
      .coordinator = cmd.coordinator.empty()
                         ? std::nullopt
                         : std::optional(coordinator_address(cmd.coordinator, cmd.auth_token_file,
                                                             cmd.tls_ca)),
      .checkpoint_dir = cmd.checkpoint_dir,
      .keep_checkpoints = static_cast<size_t>(cmd.keep_checkpoints),
      .checkpoint_every = cmd.checkpoint_every,
      .save_path = cmd.save,
      .trace_path = cmd.trace,
      .trace_steps = cmd.trace_steps,
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
