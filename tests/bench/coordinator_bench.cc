// Coordinator benchmarks, printing one JSON line:
//   - 64 simulated workers each reporting one step record at 20 Hz for 10 s to an in-process
//     coordinator on 127.0.0.1: records stored against records sent (none may be lost), and the
//     p50/p99/max latency of ReportMetrics;
//   - a 100 MB checkpoint uploaded and downloaded over loopback (MB/s, hash checked both ways);
//   - the training thread's cost of a fashion_cnn checkpoint (capture + serialize, ms), next to
//     a fashion_cnn training step (ms).
//
//   build/tests/bench/coordinator_bench [--workers 64] [--hz 20] [--seconds 10] [--mb 100]
//
// Or, with --feed HOST:PORT, it feeds a running coordinator instead (for
// tests/bench/dashboard_bench.mjs and tests/bench/coordinator_soak.py): [--token-file F]
// [--job ID] [--preload N] records of --workers ranks at once, then the workers at --hz for
// --seconds, while [--watchers N] clients watch the job and [--upload-every S] a checkpoint of
// [--upload-mb M] is uploaded every S seconds.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/checkpoint.h"
#include "core/model.h"
#include "core/random.h"
#include "core/stopwatch.h"
#include "core/trainer.h"
#include "dist/coordinator_client.h"
#include "dist/coordinator_service.h"

namespace {

using namespace convoy;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * double(v.size())))];
}

// `megabytes` MiB of pseudo-random bytes (a checkpoint's worth that does not compress).
std::string random_megabytes(int megabytes, uint64_t seed) {
  std::string bytes(static_cast<size_t>(megabytes) << 20, '\0');
  std::mt19937_64 random(seed);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    const uint64_t v = random();
    std::memcpy(bytes.data() + i, &v, 8);
  }
  return bytes;
}

// A plausible step record of rank `rank`: a decaying loss, a rising accuracy, ~1,000 images/s.
pb::StepRecord simulated_record(int rank, int64_t step, int64_t total_steps) {
  pb::StepRecord r;
  r.set_rank(rank);
  r.set_step(step);
  r.set_epoch(step / 1000);
  r.set_loss(2.3 / (1.0 + 0.01 * double(step)));
  r.set_accuracy(1.0 - 0.9 / (1.0 + 0.01 * double(step)));
  r.set_step_seconds(0.064 + 0.001 * double((step * 7 + rank) % 5));
  r.set_allreduce_seconds(0.004);
  r.set_images_per_second(64 / r.step_seconds());
  r.set_learning_rate(0.05 * (1.0 - double(step) / double(total_steps + 1)));
  r.set_total_steps(total_steps);
  r.set_wall_time(wall_seconds());
  return r;
}

// `workers` ranks of job `job` each reporting one step record (from `first_step` on) at `hz`
// for `seconds`: records sent, stored and lost, and ReportMetrics latencies.
nlohmann::json simulate_workers(const CoordinatorAddress& address, const std::string& job,
                                int workers, int hz, int seconds, int64_t first_step) {
  int64_t already = 0;
  try {
    already = CoordinatorClient(address).job_status(job, 30).records();
  } catch (const Error&) {
    // a new job
  }
  std::vector<std::vector<double>> latencies(static_cast<size_t>(workers));
  std::vector<int64_t> failures(static_cast<size_t>(workers), 0);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();  // the workers' common schedule
  const Stopwatch load;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      CoordinatorClient client(address);
      {
        pb::RegisterRequest r;
        r.set_job_id(job);
        r.set_rank(w);
        r.set_world_size(workers);
        client.register_rank(r, 10);
      }
      const auto period = std::chrono::microseconds(1'000'000 / hz);
      auto next = start;
      for (int64_t step = first_step; step < first_step + int64_t{hz} * seconds; ++step) {
        std::this_thread::sleep_until(next);
        next += period;
        pb::MetricsBatch batch;
        batch.set_job_id(job);
        *batch.add_record() = simulated_record(w, step, first_step + int64_t{hz} * seconds);
        const Stopwatch t0;
        try {
          client.report_metrics(batch, 10);
        } catch (const Error&) {
          ++failures[static_cast<size_t>(w)];
        }
        latencies[static_cast<size_t>(w)].push_back(t0.milliseconds());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = load.seconds();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  int64_t failed = 0;
  for (int64_t f : failures) failed += f;
  CoordinatorClient client(address);
  const int64_t stored = client.job_status(job, 30).records() - already;
  return {{"workers", workers},
          {"hz_per_worker", hz},
          {"seconds", elapsed},
          {"records_sent", all.size()},
          {"records_stored", stored},
          {"failed_calls", failed},
          {"lost", int64_t(all.size()) - failed - stored},
          {"latency_ms_p50", percentile(all, 0.50)},
          {"latency_ms_p99", percentile(all, 0.99)},
          {"latency_ms_max", percentile(all, 1.0)}};
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 64, hz = 20, seconds = 10, mb = 100, watchers = 0, upload_every = 0, upload_mb = 10;
  std::string feed, job = "dashboard", token_file;
  int64_t preload = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--feed") feed = argv[i + 1];
    if (flag == "--job") job = argv[i + 1];
    if (flag == "--token-file") token_file = argv[i + 1];
    if (flag == "--preload") preload = std::atoll(argv[i + 1]);
    if (flag == "--workers") workers = value;
    if (flag == "--hz") hz = value;
    if (flag == "--seconds") seconds = value;
    if (flag == "--mb") mb = value;
    if (flag == "--watchers") watchers = value;
    if (flag == "--upload-every") upload_every = value;
    if (flag == "--upload-mb") upload_mb = value;
  }
  if (!feed.empty()) {
    // Feeding a coordinator elsewhere (tests/bench/dashboard_bench.mjs): `preload` records of
    // `workers` ranks as fast as they go, with an evaluation every 100 steps, then the workers
    // live at `hz` for `seconds`.
    const CoordinatorAddress address{feed, token_file.empty() ? "" : read_token_file(token_file),
                                     ""};
    CoordinatorClient client(address);
    const int64_t steps = preload / workers;
    const int64_t total = steps + int64_t{hz} * seconds;
    for (int w = 0; w < workers; ++w) {
      pb::RegisterRequest r;
      r.set_job_id(job);
      r.set_rank(w);
      r.set_world_size(workers);
      client.register_rank(r, 10);
    }
    const Stopwatch t0;
    pb::MetricsBatch batch;
    batch.set_job_id(job);
    for (int64_t step = 1; step <= steps; ++step) {
      for (int w = 0; w < workers; ++w) *batch.add_record() = simulated_record(w, step, total);
      if (batch.record_size() >= 1000 || step == steps) {
        client.report_metrics(batch, 30);
        batch.clear_record();
      }
      if (step % 100 == 0) {
        pb::EvaluationRecord e;
        e.set_job_id(job);
        e.set_step(step);
        e.set_epoch(step / 1000);
        e.set_test_accuracy(0.9 - 0.5 / double(step));
        e.set_test_loss(0.3 + 1.0 / double(step));
        for (int c = 0; c < 10; ++c) {
          e.add_precision(0.9);
          e.add_recall(0.9);
          for (int p = 0; p < 10; ++p) e.add_confusion(c == p ? 900 : 11);
        }
        client.report_evaluation(e, 30);
      }
    }
    nlohmann::json out;
    out["preload"] = {{"records", steps * workers}, {"seconds", t0.seconds()}};
    // Watchers: each counts the step records its stream delivers.
    std::vector<std::unique_ptr<CoordinatorClient>> watcher_clients;
    std::vector<int64_t> watched(static_cast<size_t>(watchers), 0);
    std::vector<std::thread> threads;
    for (int w = 0; w < watchers; ++w) {
      watcher_clients.push_back(std::make_unique<CoordinatorClient>(address));
      threads.emplace_back([&, w] {
        try {
          watcher_clients[static_cast<size_t>(w)]->watch_metrics(
              job,
              [&](const pb::MetricsBatch& arrived) {
                watched[static_cast<size_t>(w)] += arrived.record_size();
              },
              seconds + 60.0);
        } catch (const Error& e) {
          fmt::print(stderr, "watcher {}: {}\n", w, e.what());
        }
      });
    }
    // Uploads: a checkpoint of random bytes every `upload_every` seconds.
    std::atomic<bool> feeding{true};
    std::vector<double> upload_seconds;
    int uploads_failed = 0;
    if (upload_every > 0) {
      threads.emplace_back([&] {
        std::string bytes = random_megabytes(upload_mb, 2);
        CoordinatorClient uploader(address);
        for (int64_t n = 1; feeding; ++n) {
          const auto next = std::chrono::steady_clock::now() + std::chrono::seconds(upload_every);
          pb::CheckpointInfo header;
          header.set_job_id(job);
          header.set_step(n);
          bytes[0] = static_cast<char>(n);
          const Stopwatch t;
          try {
            uploader.upload(header, bytes);
            upload_seconds.push_back(t.seconds());
          } catch (const Error& e) {
            ++uploads_failed;
            fmt::print(stderr, "upload {}: {}\n", n, e.what());
          }
          while (feeding && std::chrono::steady_clock::now() < next) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
      });
    }
    out["metrics_load"] = simulate_workers(address, job, workers, hz, seconds, steps + 1);
    feeding = false;
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the last batches reach the watchers
    for (auto& c : watcher_clients) c->cancel_all();
    for (std::thread& t : threads) t.join();
    if (watchers > 0) {
      out["watchers"] = {{"count", watchers},
                         {"records_min", *std::min_element(watched.begin(), watched.end())},
                         {"records_max", *std::max_element(watched.begin(), watched.end())}};
    }
    if (upload_every > 0) {
      out["uploads"] = {
          {"megabytes", upload_mb},
          {"stored", upload_seconds.size()},
          {"failed", uploads_failed},
          {"seconds_max", upload_seconds.empty()
                              ? 0.0
                              : *std::max_element(upload_seconds.begin(), upload_seconds.end())}};
    }
    fmt::print("{}\n", out.dump());
    return 0;
  }
  char dir_template[] = "/tmp/convoy-bench-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  SteadyClock clock;
  CoordinatorOptions options;
  options.state_dir = dir + "/state";
  options.checkpoints.max_bytes = uint64_t{2} << 30;
  CoordinatorServer server(options, "127.0.0.1:0", clock);
  const CoordinatorAddress address{"127.0.0.1:" + std::to_string(server.port()), "", ""};
  nlohmann::json result;

  // 1. Many workers reporting at a fixed rate.
  result["metrics_load"] = simulate_workers(address, "load", workers, hz, seconds, 1);

  // 2. A large checkpoint over loopback.
  {
    const std::string bytes = random_megabytes(mb, 1);
    CoordinatorClient client(address);
    pb::CheckpointInfo header;
    header.set_job_id("big");
    header.set_step(1);
    Stopwatch t0;
    client.upload(header, bytes);
    const double upload_s = t0.seconds();
    t0.restart();
    pb::CheckpointInfo got;
    const std::string back = client.download("big", "latest", &got);
    const double download_s = t0.seconds();
    result["checkpoint_transfer"] = {{"megabytes", mb},
                                     {"upload_mb_per_s", mb / upload_s},
                                     {"download_mb_per_s", mb / download_s},
                                     {"round_trip_identical", back == bytes}};
  }

  // 3. The training thread's cost of a checkpoint, next to a step.
  {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    Model model(load_model_spec("fashion_cnn"), 64, engine, Model::Mode::kTrain, "m");
    model.initialize(1);
    Optimizer optimizer(model.parameters(), {.learning_rate = 0.01f, .momentum = 0.9f});
    Trainer trainer(model, optimizer, stream);
    Batch batch;
    batch.samples = AlignedBuffer<float>(64 * 784);
    batch.labels.assign(64, 1);
    batch.count = 64;
    for (int i = 0; i < 5; ++i) trainer.step(batch);
    std::vector<double> step_ms, checkpoint_ms;
    size_t checkpoint_bytes = 0;
    for (int i = 0; i < 20; ++i) {
      Stopwatch t0;
      trainer.step(batch);
      step_ms.push_back(t0.milliseconds());
      t0.restart();
      const std::string bytes = serialize_checkpoint(make_checkpoint(model, &optimizer, {}));
      checkpoint_ms.push_back(t0.milliseconds());
      checkpoint_bytes = bytes.size();
    }
    result["checkpoint_cost"] = {
        {"model", "fashion_cnn"},
        {"checkpoint_bytes", checkpoint_bytes},
        {"capture_and_serialize_ms_median", percentile(checkpoint_ms, 0.5)},
        {"training_step_ms_median", percentile(step_ms, 0.5)}};
  }
  server.shutdown();
  std::filesystem::remove_all(dir);
  fmt::print("{}\n", result.dump());
  return 0;
}
