// The `convoy` subcommands. Each takes its parsed options, does its work and returns the process
// exit code; recoverable problems are thrown as Error and turned into exit codes by cli.cc
// (launcher/exit_code.h).
// They are plain functions so that tests can call them without a main().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

struct DataOptions {
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | cifar10 | npy
  bool dataset_given = false;             // --dataset was on the command line
  std::string dir;                        // empty: the packaged Fashion-MNIST
  int64_t limit_train = 0;                // use only the first N training samples; 0: all
  int64_t limit_test = 0;                 // use only the first N test samples; 0: all
};

struct TrainCommand {
  std::string model;
  DataOptions data;
  int64_t epochs = 5;
  int64_t batch_size = 64;
  int64_t global_batch_size = 0;  // > 0: the batch of all ranks together (per rank: this / ranks)
  double lr = 0.05;
  std::string lr_schedule = "cosine";
  double warmup_epochs = 0.0;
  int64_t lr_step_epochs = 2;
  double lr_gamma = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::string optimizer = "sgd";  // sgd | adam | adamw
  int64_t random_crop = -1;       // crop padding; -1: the model's
  bool flip = false;        // horizontal flips on or off; counts only when `given` holds "--flip"
  bool no_augment = false;  // no augmentation, whatever the model says
  double beta1 = 0.9, beta2 = 0.999, adam_epsilon = 1e-8;
  uint64_t seed = 1;
  int threads = 0;  // 0: all cores
  int64_t max_steps = 0;
  double bucket_mb = 25.0;  // gradient all-reduce bucket size, MiB (see bucket_assignment.h)
  std::string save;
  std::string trace;  // Chrome trace JSON of the last trace_steps steps, per rank
  int64_t trace_steps = 20;
  // The coordinator (or a local directory) for metrics, checkpoints and resuming.
  std::string coordinator;  // host:port
  std::string auth_token_file;
  std::string tls_ca;
  std::string job_id;            // empty: the model's name
  int64_t checkpoint_every = 0;  // steps; 0: after every epoch only
  std::string checkpoint_dir;
  int64_t keep_checkpoints = 3;
  bool resume = false;
  bool log_json = false;
  std::string progress = "auto";   // auto | bar | lines | none
  std::string precision = "fp32";  // fp32 | bf16 | auto (core/precision.h)
  double label_smoothing = 0.0;
  bool test_flip = false;  // evaluate on each test image and its mirror image
  double ema_decay = 0.0;  // 0: no average of the weights
  // The flags given on the command line ("--lr", ...): the model's train block fills the others.
  std::vector<std::string> given;
};
int run_train(const TrainCommand& cmd);

struct EvaluateCommand {
  std::string checkpoint;
  DataOptions data;
  int64_t batch_size = 256;
  int threads = 0;
  bool log_json = false;
  // Unset: as the run that wrote the checkpoint evaluated (its model's train block), with fp32
  // where this CPU has no bf16.
  std::string precision;
  bool test_flip = false;
  bool test_flip_given = false;  // else the checkpoint's run's
};
int run_evaluate(const EvaluateCommand& cmd);

struct BenchCommand {
  std::string model;
  int64_t batch_size = 64;
  int64_t steps = 100;
  int64_t warmup = 10;
  int threads = 0;
  double bucket_mb = 25.0;
  bool per_layer = false;
  std::string precision = "fp32";
};
int run_bench(const BenchCommand& cmd);

struct ExportCommand {
  std::string checkpoint;
  std::string out;
};
int run_export(const ExportCommand& cmd);

struct CoordinatorCommand {
  std::string listen;       // host:port; port 0 picks a free one
  std::string http_listen;  // host:port for /healthz, /metrics and the dashboard; empty: no HTTP
  std::string state_dir;
  std::string tensorboard_dir;  // TensorBoard event files, a run per job; empty: none
  std::string auth_token_file;
  std::string tls_cert, tls_key;
  double stall_after = 60;
  double gone_after = 30;
  int64_t keep_checkpoints = 3;
  double max_checkpoint_mb = 1024;
  int64_t max_job_records = 100'000'000;
  double max_job_checkpoint_mb = 16384;
  double upload_idle_seconds = 60;
  int64_t max_concurrent_uploads = 16;
};
int run_coordinator(const CoordinatorCommand& cmd);

struct MonitorCommand {
  std::string address;  // host:port of the coordinator
  std::string action;   // status | watch | checkpoints | download | metrics
  std::string job;      // empty: the most recently registered job
  std::string auth_token_file;
  std::string tls_ca;
  bool json = false;                   // status, checkpoints: JSON instead of a table
  double seconds = 0;                  // watch: stop after this long (0: until interrupted)
  std::string name = "latest";         // download
  std::string out;                     // download, metrics
  int64_t from_step = 0, to_step = 0;  // metrics
};
int run_monitor(const MonitorCommand& cmd);

struct LaunchCommand {
  int ranks = 0;  // -np; 0: every slot
  std::string hostfile;
  std::string discovery_script;  // prints `host:slots` lines; run before every start
  int threads = 0;               // per rank; 0: the cores shared among a host's ranks
  bool dry_run = false;
  int max_restarts = 3;      // for the whole job
  int min_ranks = 0;         // --min-np: start with fewer ranks than -np when hosts are lost
  double hang_timeout = 60;  // seconds without heartbeat or step before a rank counts as hung
  double grace_period = 25;  // seconds from SIGTERM to the end
  double backoff = 1;        // seconds before the first restart; doubles, up to 30
  std::string coordinator;   // host:port; empty: an embedded one on 127.0.0.1
  std::string state_dir = "convoy-state";  // the embedded coordinator's state, stack traces
  bool fresh = false;                      // start over instead of resuming
  std::vector<std::string> command;        // after --: train|evaluate|bench and its flags
};
int run_launch(const LaunchCommand& cmd);

struct ModelsCommand {
  std::string name;  // empty: list the built-in models
};
int run_models(const ModelsCommand& cmd);

// Parses argv, runs the subcommand, maps errors to exit codes (0 ok, 2 bad input, 1 failure).
int run_cli(int argc, char** argv);

}  // namespace convoy
