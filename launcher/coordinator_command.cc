// convoy coordinator: run the coordinator service until interrupted (SIGINT or SIGTERM).
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/read_file.h"
#include "dist/coordinator_http.h"
#include "dist/coordinator_service.h"
#include "launcher/command_support.h"
#include "launcher/commands.h"

namespace convoy {

namespace {

void check_readable(const std::string& path, const std::string& flag) {
  for_flag(flag, [&] { read_file(path); });
}

}  // namespace

int run_coordinator(const CoordinatorCommand& cmd) {
  // glibc gives each busy thread a malloc arena of its own (up to 8 per core) and keeps what they
  // freed; a server that briefly runs a thread per watcher would stay tens of MB larger after a
  // burst of watchers. One arena keeps it at its steady size (coordinator_job_test, 100 watchers
  // and 100,000 new records: 33 MB before, 61 MB at the peak, 33-35 MB after; 42 MB with two
  // arenas, 54 MB with glibc's default), for ReportMetrics latencies about 8% higher under load
  // (coordinator_bench with MALLOC_ARENA_MAX=1: p50 4.8 ms against 4.4 ms).
  mallopt(M_ARENA_MAX, 1);
  CoordinatorOptions options;
  options.state_dir = cmd.state_dir;
  prepare_state_dir(cmd.state_dir, "--state-dir");
  const StateDirLock lock(cmd.state_dir, "--state-dir");
  if (!cmd.auth_token_file.empty()) {
    options.auth_token =
        for_flag("--auth-token-file", [&] { return read_token_file(cmd.auth_token_file); });
  }
  if (cmd.tls_cert.empty() != cmd.tls_key.empty()) {
    throw Error::invalid_input("--tls-cert and --tls-key go together");
  }
  if (!cmd.tls_cert.empty()) {
    check_readable(cmd.tls_cert, "--tls-cert");
    check_readable(cmd.tls_key, "--tls-key");
  }
  if (!cmd.tensorboard_dir.empty()) {
    prepare_state_dir(cmd.tensorboard_dir, "--tensorboard-dir");
    options.tensorboard_dir = cmd.tensorboard_dir;
  }
  options.tls_cert_file = cmd.tls_cert;
  options.tls_key_file = cmd.tls_key;
  options.stall_after_seconds = cmd.stall_after;
  options.gone_after_seconds = cmd.gone_after;
  options.checkpoints.keep_last = static_cast<size_t>(cmd.keep_checkpoints);
  options.checkpoints.max_bytes = static_cast<uint64_t>(cmd.max_checkpoint_mb * (1 << 20));
  options.checkpoints.max_total_bytes =
      static_cast<uint64_t>(std::min(cmd.max_job_checkpoint_mb * (1 << 20), 0x1p63));
  options.max_job_records = static_cast<uint64_t>(cmd.max_job_records);
  options.upload_idle_seconds = cmd.upload_idle_seconds;
  options.max_concurrent_uploads = static_cast<int>(cmd.max_concurrent_uploads);

  // Block the signals here, and wait for them on a thread of our own: no async-signal work.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SteadyClock clock;
  std::unique_ptr<CoordinatorServer> server;
  try {
    server = std::make_unique<CoordinatorServer>(options, cmd.listen, clock);
  } catch (const Error& e) {
    // The flags' files and the state directory were checked above: what the server itself finds
    // wrong with its input is the address; anything else is the machine's (exit code 1).
    if (e.kind() == ErrorKind::kInvalidInput) throw e.with_context("--listen");
    throw;
  } catch (const std::filesystem::filesystem_error& e) {
    throw state_dir_error(e, "--state-dir");  // e.g. a file where a directory belongs
  }
  std::unique_ptr<CoordinatorHttp> http;
  if (!cmd.http_listen.empty()) {
    http = for_flag("--http-listen", [&] {
      return std::make_unique<CoordinatorHttp>(
          server->service(), CoordinatorHttpOptions{.listen = cmd.http_listen,
                                                    .auth_token = options.auth_token,
                                                    .tls_cert_file = options.tls_cert_file,
                                                    .tls_key_file = options.tls_key_file});
    });
  }
  fmt::print("convoy coordinator listening on port {} ({}{}){}, state in {}\n", server->port(),
             options.tls_cert_file.empty() ? "plaintext" : "TLS",
             options.auth_token.empty() ? "" : ", token required",
             http ? fmt::format(", HTTP on port {}", http->port()) : "", cmd.state_dir);
  std::fflush(stdout);
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    server->shutdown();
  });
  server->wait();
  http.reset();
  stopper.join();
  return 0;
}

}  // namespace convoy
