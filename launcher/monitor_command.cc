// convoy monitor ADDR status|watch|checkpoints|download|metrics: look at and fetch from a
// coordinator, from any machine that can reach it.
#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "atomic_file.h"
#include "commands.h"
#include "coordinator_client.h"
#include "error.h"
#include "progress.h"

namespace convoy {

namespace {

// A failed call as the user should see it: their mistakes (token, names) are exit code 2.
[[noreturn]] void fail(const grpc::Status& status, const MonitorCommand& cmd) {
  const std::string message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
      throw InputError(
          fmt::format("--auth-token-file: the coordinator at {} refused the token "
                      "({})",
                      cmd.address, message));
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
      throw InputError(fmt::format("monitor {}: {}", cmd.action, message));
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      throw std::runtime_error(
          fmt::format("cannot reach the coordinator at {} ({})", cmd.address, message));
    default:
      throw std::runtime_error(fmt::format("monitor {}: {}", cmd.action, message));
  }
}

const char* state_name(pb::RankStatus::State s) {
  switch (s) {
    case pb::RankStatus::ALIVE:
      return "alive";
    case pb::RankStatus::STALLED:
      return "STALLED";
    case pb::RankStatus::GONE:
      return "GONE";
    default:
      return "?";
  }
}

pb::JobStatus job_status(CoordinatorClient& client, const MonitorCommand& cmd) {
  grpc::ClientContext context;
  client.prepare(context, 10);
  pb::JobStatusRequest request;
  request.set_job_id(cmd.job);
  pb::JobStatus status;
  const grpc::Status s = client.stub().GetJobStatus(&context, request, &status);
  if (!s.ok()) fail(s, cmd);
  return status;
}

std::string status_text(const pb::JobStatus& s) {
  std::string out = fmt::format("job {} ({} rank(s)), {:.0f} images/s, {} step records\n",
                                s.job_id(), s.world_size(), s.images_per_second(), s.records());
  if (s.has_latest_evaluation()) {
    const pb::EvaluationRecord& e = s.latest_evaluation();
    out += fmt::format("latest evaluation: epoch {} (step {}): test accuracy {:.4f}, loss {:.4f}\n",
                       e.epoch() + 1, e.step(), e.test_accuracy(), e.test_loss());
  }
  out += fmt::format("{:>4}  {:<16} {:>8}  {:<7} {:>8} {:>9} {:>8} {:>8} {:>9}\n", "rank", "host",
                     "pid", "state", "step", "heartbeat", "loss", "accuracy", "images/s");
  for (const pb::RankStatus& r : s.rank()) {
    out += fmt::format("{:>4}  {:<16} {:>8}  {:<7} {:>8} {:>8.1f}s {:>8.4f} {:>8.4f} {:>9.0f}\n",
                       r.rank(), r.host().substr(0, 16), r.pid(), state_name(r.state()), r.step(),
                       r.seconds_since_heartbeat(), r.latest().loss(), r.latest().accuracy(),
                       r.latest().images_per_second());
  }
  return out;
}

int status(CoordinatorClient& client, const MonitorCommand& cmd) {
  const pb::JobStatus s = job_status(client, cmd);
  if (cmd.json) {
    std::string json;
    google::protobuf::util::MessageToJsonString(s, &json);
    fmt::print("{}\n", json);
  } else {
    fmt::print("{}", status_text(s));
  }
  return 0;
}

// A line of block characters for the last values of a series (a sparkline).
std::string trend(const std::deque<double>& values) {
  static const char* kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (values.empty()) return "";
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  std::string line;
  for (double v : values) {
    const double t = *hi > *lo ? (v - *lo) / (*hi - *lo) : 0.5;
    line += kBlocks[std::min(7, static_cast<int>(t * 8))];
  }
  return fmt::format("{}  {:.4f} .. {:.4f}", line, *lo, *hi);
}

std::atomic<bool> interrupted{false};

int watch(CoordinatorClient& client, const MonitorCommand& cmd) {
  std::signal(SIGINT, [](int) { interrupted = true; });
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  grpc::ClientContext context;
  client.prepare(context, cmd.seconds > 0 ? cmd.seconds + 5 : 1e7);
  pb::WatchRequest request;
  request.set_job_id(job);
  std::unique_ptr<grpc::ClientReader<pb::MetricsBatch>> reader =
      client.stub().WatchMetrics(&context, request);
  std::mutex mutex;
  std::deque<double> loss, accuracy;
  std::vector<pb::EvaluationRecord> evaluations;
  std::thread stream([&] {
    pb::MetricsBatch batch;
    while (reader->Read(&batch)) {
      std::lock_guard lock(mutex);
      for (const pb::StepRecord& r : batch.record()) {
        if (r.rank() != 0) continue;  // loss and accuracy are the job's, on every rank
        loss.push_back(r.loss());
        accuracy.push_back(r.accuracy());
        if (loss.size() > 60) loss.pop_front();
        if (accuracy.size() > 60) accuracy.pop_front();
      }
      for (const pb::EvaluationRecord& e : batch.evaluation()) evaluations.push_back(e);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  while (!interrupted) {
    const pb::JobStatus s = job_status(client, cmd);
    std::string screen = status_text(s);
    {
      std::lock_guard lock(mutex);
      screen += fmt::format("loss     {}\naccuracy {}\n", trend(loss), trend(accuracy));
      for (const pb::EvaluationRecord& e : evaluations) {
        screen += fmt::format("epoch {}: test accuracy {:.4f}\n", e.epoch() + 1, e.test_accuracy());
      }
    }
    if (terminal) {
      fmt::print("\033[H\033[2J{}", screen);  // redraw in place
    } else {
      fmt::print("{}\n", screen);
    }
    std::fflush(stdout);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (cmd.seconds > 0 && elapsed >= cmd.seconds) break;
    for (int i = 0; i < 10 && !interrupted; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  context.TryCancel();
  stream.join();
  return 0;
}

int checkpoints(CoordinatorClient& client, const MonitorCommand& cmd) {
  const std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  grpc::ClientContext context;
  client.prepare(context, 10);
  pb::ListCheckpointsRequest request;
  request.set_job_id(job);
  pb::CheckpointList list;
  const grpc::Status s = client.stub().ListCheckpoints(&context, request, &list);
  if (!s.ok()) fail(s, cmd);
  if (cmd.json) {
    std::string json;
    google::protobuf::util::MessageToJsonString(list, &json);
    fmt::print("{}\n", json);
    return 0;
  }
  fmt::print("{:<24} {:>6} {:>9} {:>12} {:>9}  {}\n", "name", "epoch", "step", "bytes", "accuracy",
             "sha256");
  for (const pb::CheckpointInfo& c : list.checkpoint()) {
    fmt::print("{:<24} {:>6} {:>9} {:>12} {:>9}  {}{}\n", c.name(), c.epoch() + 1, c.step(),
               c.size(), c.has_test_accuracy() ? fmt::format("{:.4f}", c.test_accuracy()) : "-",
               c.sha256().substr(0, 16), c.corrupt() ? "  CORRUPT (not served)" : "");
  }
  return 0;
}

int download(CoordinatorClient& client, const MonitorCommand& cmd) {
  const std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  pb::CheckpointHeader header;
  std::string bytes;
  try {
    bytes = client.download(job, cmd.name, &header);
  } catch (const CoordinatorError& e) {
    fail(grpc::Status(e.code(), e.what()), cmd);
  }
  write_file_atomically(cmd.out, bytes);
  fmt::print("downloaded {} ({} bytes, step {}) to {}\n", header.name(), bytes.size(),
             header.step(), cmd.out);
  return 0;
}

int metrics(CoordinatorClient& client, const MonitorCommand& cmd) {
  const std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  std::string csv =
      "rank,step,epoch,loss,accuracy,images_per_second,step_seconds,allreduce_seconds,"
      "wall_time\n";
  int64_t from = cmd.from_step, rows = 0;
  for (bool more = true; more;) {
    grpc::ClientContext context;
    client.prepare(context, 60);
    pb::MetricsQuery query;
    query.set_job_id(job);
    query.set_from_step(from);
    query.set_to_step(cmd.to_step);
    pb::MetricsPage page;
    const grpc::Status s = client.stub().QueryMetrics(&context, query, &page);
    if (!s.ok()) fail(s, cmd);
    // A full page may end in the middle of a step's records (one per rank): keep the complete
    // steps and ask again from the last one.
    more = page.truncated() && page.record_size() > 0;
    const int64_t last = more ? page.record(page.record_size() - 1).step() : 0;
    if (more && page.record(0).step() == last) {
      throw std::runtime_error("monitor metrics: one step has more records than a page");
    }
    for (const pb::StepRecord& r : page.record()) {
      if (more && r.step() >= last) continue;
      csv += fmt::format("{},{},{},{},{},{},{},{},{:.3f}\n", r.rank(), r.step(), r.epoch() + 1,
                         r.loss(), r.accuracy(), r.images_per_second(), r.step_seconds(),
                         r.allreduce_seconds(), r.wall_time());
      ++rows;
    }
    from = last;
  }
  write_file_atomically(cmd.out, csv);
  fmt::print("wrote {} step records of job {} to {}\n", rows, job, cmd.out);
  return 0;
}

}  // namespace

int run_monitor(const MonitorCommand& cmd) {
  CoordinatorClient client(coordinator_address(cmd.address, cmd.auth_token_file, cmd.tls_ca));
  if (cmd.action == "status") return status(client, cmd);
  if (cmd.action == "watch") return watch(client, cmd);
  if (cmd.action == "checkpoints") return checkpoints(client, cmd);
  if (cmd.action == "download") return download(client, cmd);
  if (cmd.action == "metrics") return metrics(client, cmd);
  throw InputError("monitor: unknown action '" + cmd.action + "'");
}

}  // namespace convoy
