#include <fmt/format.h>
#include <grpc/support/log.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <exception>
#include <thread>

#include "command_support.h"
#include "commands.h"
#include "error.h"

namespace convoy {

namespace {

// A finite number above zero (or at least zero). CLI::PositiveNumber lets "nan" through.
CLI::Validator finite_number(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](const std::string& text) -> std::string {
        try {
          const double v = std::stod(text);
          if (std::isfinite(v) && (v > 0 || (allow_zero && v == 0))) return {};
        } catch (const std::exception&) {
        }
        return (allow_zero ? "must be a number >= 0, got '" : "must be a positive number, got '") +
               text + "'";
      },
      allow_zero ? "NONNEGATIVE" : "POSITIVE");
}
const CLI::Validator kPositive = finite_number(false);
const CLI::Validator kNonNegative = finite_number(true);

void add_data_flags(CLI::App* app, DataOptions& data) {
  app->add_option_function<std::string>(
         "--dataset",
         [&data](const std::string& value) {
           data.dataset = value;
           data.dataset_given = true;
         },
         "Data set format: fashion-mnist, mnist (IDX files), cifar10 (binary batches) "
         "or npy ({train,test}_{x,y}.npy)")
      ->check(CLI::IsMember({"fashion-mnist", "mnist", "cifar10", "npy"}))
      ->default_str("fashion-mnist");
  app->add_option("--data", data.dir,
                  fmt::format("Directory with the data set's files (default {})", kDefaultDataDir));
  app->add_option("--limit-test", data.limit_test, "Evaluate on the first N test samples only")
      ->check(kPositive);
}

void add_threads_flag(CLI::App* app, int& threads) {
  app->add_option("--threads", threads, "OpenMP threads (default: all cores)")->check(kPositive);
}

}  // namespace

int run_cli(int argc, char** argv) {
  // gRPC writes its own diagnostics to stderr; convoy reports every failure itself, in one line.
  // Setting GRPC_VERBOSITY brings them back, for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});

  CLI::App app("convoy: data-parallel ConvNet training on CPUs", "convoy");
  app.require_subcommand(1);
  // A flag given twice takes its last value, so wrappers can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "convoy 0.1.0");

  TrainCommand train;
  CLI::App* t = app.add_subcommand("train", "Train a model and report test metrics");
  t->add_option("--model", train.model, "Built-in model name or a .pbtxt file")->required();
  add_data_flags(t, train.data);
  t->add_option("--limit-train", train.data.limit_train,
                "Train on the first N training samples only")
      ->check(kPositive);
  t->add_option("--epochs", train.epochs, "Passes over the training set")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--batch-size", train.batch_size, "Samples per step")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--lr", train.lr, "Learning rate")->check(kPositive)->capture_default_str();
  t->add_option("--lr-schedule", train.lr_schedule, "Learning-rate schedule")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))
      ->capture_default_str();
  t->add_option("--warmup-epochs", train.warmup_epochs, "Linear learning-rate warm-up")
      ->check(kNonNegative)
      ->capture_default_str();
  t->add_option("--lr-step-epochs", train.lr_step_epochs, "step schedule: decay every N epochs")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--lr-gamma", train.lr_gamma, "step schedule: decay factor")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--optimizer", train.optimizer, "sgd, adam or adamw (decoupled weight decay)")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  t->add_option("--beta1", train.beta1, "Adam: decay of the first moment")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  t->add_option("--beta2", train.beta2, "Adam: decay of the second moment")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  t->add_option("--adam-epsilon", train.adam_epsilon, "Adam: added to the denominator")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--random-crop", train.random_crop,
                "Augment: random crop with this much zero padding (default: the model's)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  t->add_flag("--flip", train.flip, "Augment: random horizontal flips");
  t->add_flag("--no-augment", train.no_augment, "No augmentation, whatever the model says");
  t->add_option("--momentum", train.momentum, "SGD momentum")
      ->check(kNonNegative)
      ->capture_default_str();
  t->add_flag("--nesterov", train.nesterov, "Use Nesterov momentum");
  t->add_option("--weight-decay", train.weight_decay,
                "Weight decay (L2 in the gradient; decoupled for adamw)")
      ->check(kNonNegative)
      ->capture_default_str();
  t->add_option("--seed", train.seed, "Seed for initialisation and shuffling")
      ->capture_default_str();
  add_threads_flag(t, train.threads);
  t->add_option("--max-steps", train.max_steps, "Stop after N optimizer steps")->check(kPositive);
  t->add_option("--bucket-mb", train.bucket_mb, "Gradient all-reduce bucket size (MiB)")
      ->check(kPositive)
      ->capture_default_str();
  t->add_option("--save", train.save, "Write a checkpoint here when training ends");
  t->add_option("--coordinator", train.coordinator,
                "host:port of a convoy coordinator to report to and store checkpoints at");
  t->add_option("--auth-token-file", train.auth_token_file, "Bearer token for the coordinator");
  t->add_option("--tls-ca", train.tls_ca, "PEM certificate to verify a TLS coordinator with");
  t->add_option("--job-id", train.job_id, "Job name at the coordinator (default: the model's)");
  t->add_option("--checkpoint-every", train.checkpoint_every,
                "Also checkpoint every N steps (checkpoints follow every epoch anyway)")
      ->check(kPositive);
  t->add_option("--checkpoint-dir", train.checkpoint_dir,
                "Without --coordinator: keep checkpoints in this directory");
  t->add_option("--keep-checkpoints", train.keep_checkpoints,
                "With --checkpoint-dir: newest checkpoints kept (plus the most accurate)")
      ->check(kPositive)
      ->capture_default_str();
  t->add_flag("--resume", train.resume,
              "Continue from the latest checkpoint of the coordinator or --checkpoint-dir");
  t->add_flag("--log-json", train.log_json, "JSON lines on stdout");
  t->add_option("--progress", train.progress,
                "Progress on stderr: a redrawn bar, periodic lines, or none (auto: a bar on a "
                "terminal, lines otherwise)")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();

  EvaluateCommand evaluate;
  CLI::App* e = app.add_subcommand("evaluate", "Evaluate a checkpoint on the test set");
  e->add_option("--checkpoint", evaluate.checkpoint, "Checkpoint file")->required();
  add_data_flags(e, evaluate.data);
  e->add_option("--batch-size", evaluate.batch_size, "Samples per forward pass")
      ->check(kPositive)
      ->capture_default_str();
  add_threads_flag(e, evaluate.threads);
  e->add_flag("--log-json", evaluate.log_json, "JSON lines on stdout");

  BenchCommand bench;
  CLI::App* b = app.add_subcommand("bench", "Time training steps on synthetic data");
  b->add_option("--model", bench.model, "Built-in model name or a .pbtxt file")->required();
  b->add_option("--batch-size", bench.batch_size, "Samples per step")
      ->check(kPositive)
      ->capture_default_str();
  b->add_option("--steps", bench.steps, "Timed steps")->check(kPositive)->capture_default_str();
  b->add_option("--warmup", bench.warmup, "Untimed steps first")
      ->check(kNonNegative)
      ->capture_default_str();
  add_threads_flag(b, bench.threads);
  b->add_option("--bucket-mb", bench.bucket_mb, "Gradient all-reduce bucket size (MiB)")
      ->check(kPositive)
      ->capture_default_str();
  b->add_flag("--per-layer", bench.per_layer, "Also time each layer's forward and backward");

  ExportCommand export_cmd;
  CLI::App* x = app.add_subcommand("export", "Write a checkpoint's parameters as NumPy .npz");
  x->add_option("--checkpoint", export_cmd.checkpoint, "Checkpoint file")->required();
  x->add_option("--out", export_cmd.out, "Output .npz file")->required();

  CoordinatorCommand coordinator;
  CLI::App* c = app.add_subcommand("coordinator", "Run the coordinator service");
  c->add_option("--listen", coordinator.listen, "host:port to listen on (port 0: any free port)")
      ->required();
  c->add_option("--state-dir", coordinator.state_dir, "Where metrics and checkpoints are kept")
      ->required();
  c->add_option("--auth-token-file", coordinator.auth_token_file,
                "File holding the bearer token every call must carry");
  c->add_option("--tls-cert", coordinator.tls_cert, "PEM certificate (with --tls-key: TLS)");
  c->add_option("--tls-key", coordinator.tls_key, "PEM private key");
  c->add_option("--stall-after", coordinator.stall_after,
                "Seconds without progress, while other ranks progress, before a rank is stalled")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--gone-after", coordinator.gone_after,
                "Seconds without a heartbeat before a rank is gone")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--keep-checkpoints", coordinator.keep_checkpoints,
                "Newest checkpoints kept per job (plus the most accurate)")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--max-checkpoint-mb", coordinator.max_checkpoint_mb,
                "Largest checkpoint accepted (MiB)")
      ->check(kPositive)
      ->capture_default_str();

  MonitorCommand monitor;
  CLI::App* mon = app.add_subcommand("monitor", "Watch and fetch from a coordinator");
  mon->add_option("address", monitor.address, "host:port of the coordinator")->required();
  mon->add_option("--job", monitor.job, "Job id (default: the most recently registered)");
  mon->add_option("--auth-token-file", monitor.auth_token_file, "Bearer token file");
  mon->add_option("--tls-ca", monitor.tls_ca, "PEM certificate to verify a TLS coordinator with");
  mon->require_subcommand(1);
  CLI::App* mon_status = mon->add_subcommand("status", "Ranks, states, throughput, metrics");
  mon_status->add_flag("--json", monitor.json, "JSON instead of a table");
  CLI::App* mon_watch = mon->add_subcommand("watch", "Live status with loss and accuracy trends");
  mon_watch->add_option("--seconds", monitor.seconds, "Stop after this long")->check(kPositive);
  CLI::App* mon_list = mon->add_subcommand("checkpoints", "List stored checkpoints");
  mon_list->add_flag("--json", monitor.json, "JSON instead of a table");
  CLI::App* mon_download = mon->add_subcommand("download", "Fetch a checkpoint");
  mon_download->add_option("name", monitor.name, "Checkpoint name, or latest")->required();
  mon_download->add_option("--out", monitor.out, "Where to write it")->required();
  CLI::App* mon_metrics = mon->add_subcommand("metrics", "Step records as CSV");
  mon_metrics->add_option("--out", monitor.out, "CSV file to write")->required();
  mon_metrics->add_option("--from-step", monitor.from_step, "First step")->check(kNonNegative);
  mon_metrics->add_option("--to-step", monitor.to_step, "Last step (0: all)")->check(kNonNegative);

  ModelsCommand models;
  CLI::App* m = app.add_subcommand("models", "List built-in models, or print one as .pbtxt");
  m->add_option("name", models.name, "A built-in model name");

  std::string known;
  bool is_command = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    known += (known.empty() ? "" : ", ") + sub->get_name();
    is_command = is_command || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !is_command) {
    fmt::print(stderr, "convoy: unknown command '{}' (expected one of: {})\n", argv[1], known);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForAllHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForVersion& err) {
    return app.exit(err);
  } catch (const CLI::ParseError& err) {
    std::string message = err.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    fmt::print(stderr, "convoy: {} (see convoy --help)\n", message);
    return 2;
  }

  try {
    if (t->parsed()) return run_train(train);
    if (e->parsed()) return run_evaluate(evaluate);
    if (b->parsed()) return run_bench(bench);
    if (x->parsed()) return run_export(export_cmd);
    if (m->parsed()) return run_models(models);
    if (c->parsed()) return run_coordinator(coordinator);
    if (mon->parsed()) {
      for (CLI::App* sub : mon->get_subcommands()) monitor.action = sub->get_name();
      if (!monitor.out.empty()) check_writable(monitor.out, "--out");
      return run_monitor(monitor);
    }
  } catch (const InputError& err) {
    fmt::print(stderr, "convoy: {}\n", err.what());
    return 2;
  } catch (const std::exception& err) {
    fmt::print(stderr, "convoy: error: {}\n", err.what());
    return 1;
  }
  return 1;
}

}  // namespace convoy
