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

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/stopwatch.h"
#include "dist/coordinator_client.h"
#include "launcher/command_support.h"
#include "launcher/commands.h"
#include "launcher/progress.h"

namespace convoy {

namespace {

// A failed call as the user should see it: their mistakes (token, names) are exit code 2, an
// unreachable coordinator is 1 (launcher/exit_code.h).
[[noreturn]] void fail(const Error& e, const MonitorCommand& cmd) {
  switch (e.kind()) {
    case ErrorKind::kUnauthenticated:
      throw e.with_context(
          fmt::format("--auth-token-file: the coordinator at {} refused the token", cmd.address));
    case ErrorKind::kUnavailable:
      throw e.with_context(fmt::format("cannot reach the coordinator at {}", cmd.address));
    default:
      throw e.with_context(fmt::format("monitor {}", cmd.action));
  }
}

// Runs a call of the client; a failure is reported as fail() says.
template <typename F>
auto ask(const MonitorCommand& cmd, F&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const Error& e) {
    fail(e, cmd);
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
  return ask(cmd, [&] { return client.job_status(cmd.job); });
}

std::string status_text(const pb::JobStatus& s) {
  std::string out = fmt::format("job {} ({} rank(s)), {:.0f} images/s, {} step records\n",
                                s.job_id(), s.world_size(), s.images_per_second(), s.records());
  if (s.has_latest_evaluation()) {
    const pb::EvaluationRecord& e = s.latest_evaluation();
    out += fmt::format("latest evaluation: epoch {} (step {}): test accuracy {:.4f}, loss {:.4f}\n",
                       e.epoch() + 1, e.step(), e.test_accuracy(), e.test_loss());
  }
  if (s.restarts() > 0) {
    const pb::RestartRecord& r = s.last_restart();
    out += fmt::format("restarts: {} (latest: {}{})\n", s.restarts(),
                       r.rank() >= 0 ? fmt::format("rank {} on {}: ", r.rank(), r.host()) : "",
                       r.cause());
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

// protobuf's JSON form writes `bytes` fields in base64, and the protocol's text (job ids, names,
// hosts, hashes) travels as `bytes` (proto/coordinator.proto): put the text back, recursively.
void bytes_as_text(const google::protobuf::Message& message, nlohmann::json& json) {
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  const google::protobuf::Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->is_map() || !json.contains(field->json_name())) continue;
    nlohmann::json& value = json[field->json_name()];
    const int n = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int k = 0; k < n; ++k) {
      nlohmann::json& item = field->is_repeated() ? value[static_cast<size_t>(k)] : value;
      if (field->type() == google::protobuf::FieldDescriptor::TYPE_BYTES) {
        item = field->is_repeated() ? reflection->GetRepeatedString(message, field, k)
                                    : reflection->GetString(message, field);
      } else if (field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        bytes_as_text(field->is_repeated() ? reflection->GetRepeatedMessage(message, field, k)
                                           : reflection->GetMessage(message, field),
                      item);
      }
    }
  }
}

// `message` as one line of JSON (protobuf's field names), its text fields as text; bytes that are
// not UTF-8 (a coordinator of another version) are replaced, never a crash.
std::string to_json(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::MessageToJsonString(message, &text);
  nlohmann::json json = nlohmann::json::parse(text);
  bytes_as_text(message, json);
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int status(CoordinatorClient& client, const MonitorCommand& cmd) {
  const pb::JobStatus s = job_status(client, cmd);
  if (cmd.json) {
    fmt::print("{}\n", to_json(s));
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
  std::mutex mutex;
  std::deque<double> loss, accuracy;
  std::vector<pb::EvaluationRecord> evaluations;
  // A separate connection for the stream, so that ending it leaves the status calls alone.
  CoordinatorClient stream_client(client.address());
  std::thread stream([&] {
    const auto on_batch = [&](const pb::MetricsBatch& batch) {
      std::lock_guard lock(mutex);
      for (const pb::StepRecord& r : batch.record()) {
        if (r.rank() != 0) continue;  // loss and accuracy are the job's, on every rank
        loss.push_back(r.loss());
        accuracy.push_back(r.accuracy());
        if (loss.size() > 60) loss.pop_front();
        if (accuracy.size() > 60) accuracy.pop_front();
      }
      for (const pb::EvaluationRecord& e : batch.evaluation()) evaluations.push_back(e);
    };
    try {
      stream_client.watch_metrics(job, on_batch, cmd.seconds > 0 ? cmd.seconds + 5 : 1e7);
    } catch (const Error&) {
      // The status calls on the main thread report what is wrong with the coordinator.
    }
  });
  const Stopwatch watching;
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
    const double elapsed = watching.seconds();
    if (cmd.seconds > 0 && elapsed >= cmd.seconds) break;
    for (int i = 0; i < 10 && !interrupted; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  stream_client.cancel_all();
  stream.join();
  return 0;
}

int checkpoints(CoordinatorClient& client, const MonitorCommand& cmd) {
  const std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  const pb::CheckpointList list = ask(cmd, [&] { return client.list_checkpoints(job); });
  if (cmd.json) {
    fmt::print("{}\n", to_json(list));
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
  pb::CheckpointInfo header;
  const std::string bytes = ask(cmd, [&] { return client.download(job, cmd.name, &header); });
  write_file_atomically(cmd.out, bytes);
  fmt::print("downloaded {} ({} bytes, step {}) to {}\n", header.name(), bytes.size(),
             header.step(), cmd.out);
  return 0;
}

int metrics(CoordinatorClient& client, const MonitorCommand& cmd) {
  const std::string job = cmd.job.empty() ? job_status(client, cmd).job_id() : cmd.job;
  std::string csv =
      "rank,step,epoch,loss,accuracy,images_per_second,step_seconds,allreduce_seconds,"
      "wall_time,learning_rate\n";
  int64_t from = cmd.from_step, rows = 0;
  for (bool more = true; more;) {
    pb::MetricsQuery query;
    query.set_job_id(job);
    query.set_from_step(from);
    query.set_to_step(cmd.to_step);
    const pb::MetricsPage page = ask(cmd, [&] { return client.query_metrics(query); });
    // A full page may end in the middle of a step's records (one per rank): keep the complete
    // steps and ask again from the last one.
    more = page.truncated() && page.record_size() > 0;
    const int64_t last = more ? page.record(page.record_size() - 1).step() : 0;
    if (more && page.record(0).step() == last) {
      throw Error::internal("monitor metrics: one step has more records than a page");
    }
    for (const pb::StepRecord& r : page.record()) {
      if (more && r.step() >= last) continue;
      csv += fmt::format("{},{},{},{},{},{},{},{},{:.3f},{}\n", r.rank(), r.step(), r.epoch() + 1,
                         r.loss(), r.accuracy(), r.images_per_second(), r.step_seconds(),
                         r.allreduce_seconds(), r.wall_time(), r.learning_rate());
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
  throw Error::invalid_input("monitor: unknown action '" + cmd.action + "'");
}

}  // namespace convoy
