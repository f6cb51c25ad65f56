#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <exception>
#include <thread>

#include "core/checkpoint.h"
#include "core/error.h"
#include "dist/coordinator_client.h"
#include "launcher/cli_options.h"
#include "launcher/command_support.h"
#include "launcher/commands.h"
#include "launcher/exit_code.h"
#include "launcher/train_flags.h"

namespace convoy {

int run_cli(int argc, char** argv) {
  quiet_grpc_logging();

  CLI::App app("convoy: data-parallel ConvNet training on CPUs", "convoy");
  app.require_subcommand(1);
  // A flag given twice takes its last value, so wrappers can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "convoy 0.1.0");

  TrainCommand train;
  CLI::App* t = add_train_command(app, train);

  EvaluateCommand evaluate;
  CLI::App* e = app.add_subcommand("evaluate", "Evaluate a checkpoint on the test set");
  e->add_option("--checkpoint", evaluate.checkpoint, "Checkpoint file")
      ->required()
      ->check(non_empty());
  add_data_flags(e, evaluate.data);
  e->add_option("--batch-size", evaluate.batch_size, "Samples per forward pass")
      ->check(positive_number())
      ->capture_default_str();
  add_threads_flag(e, evaluate.threads);
  e->add_option("--precision", evaluate.precision,
                fmt::format("{} (default: as the checkpoint's run evaluated, fp32 where this "
                            "CPU has no bf16)",
                            kPrecisionHelp))
      ->check(precision_check());
  CLI::Option* flip =
      e->add_flag("--test-flip", evaluate.test_flip,
                  "Also run each sample mirrored (width reversed) and average the two predictions "
                  "(default: as the checkpoint's run evaluated)");
  e->final_callback([flip, &evaluate] { evaluate.test_flip_given = flip->count() > 0; });
  e->add_flag("--log-json", evaluate.log_json, "JSON lines on stdout");

  BenchCommand bench;
  CLI::App* b = app.add_subcommand("bench", "Time training steps on synthetic data");
  b->add_option("--model", bench.model, "Built-in model name or a .pbtxt file")->required();
  b->add_option("--batch-size", bench.batch_size, "Samples per step")
      ->check(positive_number())
      ->capture_default_str();
  b->add_option("--steps", bench.steps, "Timed steps")
      ->check(positive_number())
      ->capture_default_str();
  b->add_option("--warmup", bench.warmup, "Untimed steps first")
      ->check(non_negative_number())
      ->capture_default_str();
  add_threads_flag(b, bench.threads);
  add_precision_flag(b, bench.precision);
  b->add_option("--bucket-mb", bench.bucket_mb, "Gradient all-reduce bucket size (MiB)")
      ->check(bucket_mb())
      ->capture_default_str();
  b->add_flag("--per-layer", bench.per_layer, "Also time each layer's forward and backward");

  ExportCommand export_cmd;
  CLI::App* x = app.add_subcommand("export", "Write a checkpoint's parameters as NumPy .npz");
  x->add_option("--checkpoint", export_cmd.checkpoint, "Checkpoint file")
      ->required()
      ->check(non_empty());
  x->add_option("--out", export_cmd.out, "Output .npz file")->required()->check(non_empty());

  CoordinatorCommand coordinator;
  CLI::App* c = app.add_subcommand("coordinator", "Run the coordinator service");
  c->add_option("--listen", coordinator.listen, "host:port to listen on (port 0: any free port)")
      ->required();
  c->add_option("--state-dir", coordinator.state_dir, "Where metrics and checkpoints are kept")
      ->required();
  c->add_option("--http-listen", coordinator.http_listen,
                "host:port for HTTP: the dashboard, /healthz and Prometheus /metrics (port 0: any "
                "free port)")
      ->check(non_empty());
  c->add_option("--tensorboard-dir", coordinator.tensorboard_dir,
                "Write TensorBoard event files here, a run (subdirectory) per job")
      ->check(non_empty());
  c->add_option("--auth-token-file", coordinator.auth_token_file,
                "File holding the bearer token every call must carry");
  c->add_option("--tls-cert", coordinator.tls_cert, "PEM certificate (with --tls-key: TLS)");
  c->add_option("--tls-key", coordinator.tls_key, "PEM private key");
  c->add_option("--stall-after", coordinator.stall_after,
                "Seconds without progress, while other ranks progress, before a rank is stalled")
      ->check(positive_number())
      ->capture_default_str();
  c->add_option("--gone-after", coordinator.gone_after,
                "Seconds without a heartbeat before a rank is gone")
      ->check(positive_number())
      ->capture_default_str();
  c->add_option("--keep-checkpoints", coordinator.keep_checkpoints,
                "Newest checkpoints kept per job (plus the most accurate)")
      ->check(positive_number())
      ->capture_default_str();
  c->add_option("--max-checkpoint-mb", coordinator.max_checkpoint_mb,
                "Largest checkpoint accepted (MiB, at most 2048: a checkpoint cannot be larger)")
      ->check(positive_number() & CLI::Range(0.0, double(kMaxCheckpointBytes >> 20)))
      ->capture_default_str();
  c->add_option(
       "--max-job-records", coordinator.max_job_records,
       "Step and evaluation records a job may store; more are refused (RESOURCE_EXHAUSTED)")
      ->check(positive_number())
      ->capture_default_str();
  c->add_option("--upload-idle-seconds", coordinator.upload_idle_seconds,
                "An upload that sends nothing for this long is ended and its partial file removed")
      ->check(positive_number())
      ->capture_default_str();
  c->add_option("--max-concurrent-uploads", coordinator.max_concurrent_uploads,
                "Uploads received at once; more are refused (UNAVAILABLE: try again later)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}))
      ->capture_default_str();
  c->add_option("--max-job-checkpoint-mb", coordinator.max_job_checkpoint_mb,
                "MiB a job's stored checkpoints may take after retention; an upload that would "
                "exceed it is refused")
      ->check(positive_number())
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
  mon_watch->add_option("--seconds", monitor.seconds, "Stop after this long")
      ->check(positive_number());
  CLI::App* mon_list = mon->add_subcommand("checkpoints", "List stored checkpoints");
  mon_list->add_flag("--json", monitor.json, "JSON instead of a table");
  CLI::App* mon_download = mon->add_subcommand("download", "Fetch a checkpoint");
  mon_download->add_option("name", monitor.name, "Checkpoint name, or latest")->required();
  mon_download->add_option("--out", monitor.out, "Where to write it")
      ->required()
      ->check(non_empty());
  CLI::App* mon_metrics = mon->add_subcommand("metrics", "Step records as CSV");
  mon_metrics->add_option("--out", monitor.out, "CSV file to write")
      ->required()
      ->check(non_empty());
  mon_metrics->add_option("--from-step", monitor.from_step, "First step")
      ->check(non_negative_number());
  mon_metrics->add_option("--to-step", monitor.to_step, "Last step (0: all)")
      ->check(non_negative_number());
  // The monitor's own options (--job, --auth-token-file, --tls-ca) may also follow the action.
  for (CLI::App* action : mon->get_subcommands({})) action->fallthrough();

  LaunchCommand launch;
  CLI::App* l = app.add_subcommand(
      "launch",
      "Start train, evaluate or bench under mpirun: convoy launch [options] -- train ...");
  l->add_option("-n,--np", launch.ranks, "Ranks to start (default: every slot)")
      ->check(CLI::Range(1, 1 << 16));
  CLI::Option* hostfile =
      l->add_option("--hostfile", launch.hostfile, "Open MPI hostfile: 'host slots=N' per line")
          ->check(non_empty());
  l->add_option("--host-discovery-script", launch.discovery_script,
                "Command printing 'host:slots' per line; run before every start")
      ->check(non_empty())
      ->excludes(hostfile);
  l->add_option("--threads", launch.threads,
                "OpenMP threads per rank (default: a host's cores shared among its ranks)")
      ->check(CLI::Range(1, kMaxThreads));
  l->add_flag("--dry-run", launch.dry_run, "Print the mpirun line and exit");
  l->add_option("--max-restarts", launch.max_restarts,
                "Times the job is started again after a failure (for the whole job)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  l->add_option("--min-np", launch.min_ranks,
                "Restart on fewer ranks, down to this many, when hosts are lost (needs train's "
                "--global-batch-size)")
      ->check(CLI::Range(1, 1 << 16));
  l->add_option("--hang-timeout", launch.hang_timeout,
                "Seconds a rank may go without a heartbeat, or the job without a step, before it "
                "counts as hung (stack traces are taken and the job restarted)")
      ->check(positive_number())
      ->capture_default_str();
  l->add_option("--backoff", launch.backoff,
                "Seconds before the first restart; doubles for each further one, up to 30")
      ->check(non_negative_number() & CLI::Range(0.0, 30.0))
      ->capture_default_str();
  l->add_option("--grace-period", launch.grace_period,
                "Seconds from SIGTERM or SIGINT until the job is ended at once")
      ->check(positive_number())
      ->capture_default_str();
  l->add_option("--coordinator", launch.coordinator,
                "host:port of a coordinator (default: one embedded in the launcher)")
      ->check(non_empty());
  l->add_option("--state-dir", launch.state_dir,
                "The embedded coordinator's checkpoints and metrics, and stack traces of hangs")
      ->check(non_empty())
      ->capture_default_str();
  l->add_flag("--fresh", launch.fresh, "Start the job over instead of resuming it");
  l->add_option("command", launch.command, "The convoy command to run, after --");

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
    // mpirun spells it "-np"; CLI11 takes only one letter after a single dash. Before the "--"
    // that starts a launched command, read "-np" as "--np".
    std::vector<std::string> args;
    bool command = false;
    for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants them reversed
    for (auto it = args.rbegin(); it != args.rend(); ++it) {
      command = command || *it == "--";
      if (!command && *it == "-np") *it = "--np";
      if (!command && it->rfind("-np=", 0) == 0) *it = "-" + *it;  // -np=2 -> --np=2
    }
    app.parse(args);
  } catch (const CLI::CallForHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForAllHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForVersion& err) {
    return app.exit(err);
  } catch (const CLI::ParseError& err) {
    fmt::print(stderr, "convoy: {} (see convoy --help)\n", one_line(err));
    return 2;
  }

  try {
    if (t->parsed()) return run_train(train);
    if (e->parsed()) return run_evaluate(evaluate);
    if (b->parsed()) return run_bench(bench);
    if (x->parsed()) return run_export(export_cmd);
    if (m->parsed()) return run_models(models);
    if (l->parsed()) return run_launch(launch);
    if (c->parsed()) return run_coordinator(coordinator);
    if (mon->parsed()) {
      for (CLI::App* sub : mon->get_subcommands()) monitor.action = sub->get_name();
      if (!monitor.out.empty()) check_writable(monitor.out, "--out");
      return run_monitor(monitor);
    }
  } catch (const Error& err) {
    const int code = exit_code(err.kind());
    fmt::print(stderr, "convoy: {}{}\n", code == 2 ? "" : "error: ", err.what());
    return code;
  } catch (const std::exception& err) {
    fmt::print(stderr, "convoy: error: {}\n", err.what());
    return 1;
  }
  return 1;
}

}  // namespace convoy
